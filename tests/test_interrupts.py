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
