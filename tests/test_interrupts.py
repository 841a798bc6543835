"""record_interrupts: SIGINT, SIGTERM, SIGHUP are recorded and unwind; ignored ones stay ignored."""

from __future__ import annotations

import os
import signal

import pytest

from daemonkit.interrupts import record_interrupts


def test_nested_records_both_see_the_signal_and_the_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with (
        pytest.raises(KeyboardInterrupt),
        record_interrupts() as outer,
        record_interrupts() as inner,
    ):
        os.kill(os.getpid(), signal.SIGINT)
    assert outer.seen and inner.seen
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_sigint_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with record_interrupts() as record:
            os.kill(os.getpid(), signal.SIGINT)  # discarded by the kernel: SIG_IGN
        assert not record.seen
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_unwind_like_ctrl_c(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(KeyboardInterrupt), record_interrupts() as record:
        os.kill(os.getpid(), sig)  # default action: death; here an exception instead
    assert record.signum == sig and record.exit_code == 128 + sig
    assert signal.getsignal(sig) is before


def test_an_ignored_sighup_stays_ignored_and_unrecorded() -> None:
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with record_interrupts() as record:
            os.kill(os.getpid(), signal.SIGHUP)
        assert not record.seen
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_signal_pipe_wakes_a_poll_and_puts_the_handlers_back() -> None:
    """A signal sent to this process makes the pipe readable (a loop in poll(2) would wake) and
    reads back as its number; close() restores the handler and the wakeup fd, twice safely."""
    import os
    import select
    import signal

    from daemonkit.interrupts import SignalPipe

    before = signal.getsignal(signal.SIGUSR1)
    pipe = SignalPipe([signal.SIGUSR1])
    try:
        poller = select.poll()
        poller.register(pipe.fd, select.POLLIN)
        assert poller.poll(0) == [] and pipe.read() == []
        os.kill(os.getpid(), signal.SIGUSR1)
        assert poller.poll(1000) == [(pipe.fd, select.POLLIN)]
        assert pipe.read() == [signal.SIGUSR1]
        assert pipe.read() == []
        fd = pipe.fd
    finally:
        pipe.close()
    pipe.close()
    assert signal.getsignal(signal.SIGUSR1) == before
    assert signal.set_wakeup_fd(-1) == -1  # none was left installed
    try:
        os.fstat(fd)
    except OSError:
        pass
    else:
        raise AssertionError(f"fd {fd} left open")


def test_a_repeat_within_the_grace_unwinds_once() -> None:
    """timeout(1) signals the command and then its group: the second SIGTERM, a moment after
    the first, must not raise inside the first one's cleanup; a later one unwinds again."""
    import os
    import signal
    import time

    from daemonkit.interrupts import REPEAT_S, record_interrupts

    cleaned = False
    with record_interrupts() as record:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises in here
            raise AssertionError("SIGTERM did not unwind")
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # the group's copy, during cleanup
            time.sleep(0.01)
            cleaned = True
        assert cleaned and record.signum == signal.SIGTERM
        time.sleep(REPEAT_S)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
            raise AssertionError("a later SIGTERM did not unwind")
        except KeyboardInterrupt:
            pass
