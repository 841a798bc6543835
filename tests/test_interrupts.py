"""record_sigint: a real SIGINT is recorded, passed on, and ignored ones stay ignored."""

from __future__ import annotations

import os
import signal

import pytest

from daemonkit.interrupts import record_sigint


def test_nested_records_both_see_the_signal_and_the_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), record_sigint() as outer, record_sigint() as inner:
        os.kill(os.getpid(), signal.SIGINT)
    assert outer.seen and inner.seen
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_sigint_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with record_sigint() as record:
            os.kill(os.getpid(), signal.SIGINT)  # discarded by the kernel: SIG_IGN
        assert not record.seen
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
