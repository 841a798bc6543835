"""Interruptions: SIGINT, SIGTERM and SIGHUP end a command the same way, and are remembered
even where Python drops them.

Facts about the three signals:

* SIGINT is Ctrl-C (the terminal sends it to the whole foreground process group); SIGTERM is
  what ``kill``, ``timeout`` and service managers send; SIGHUP comes when the terminal goes
  away (an ssh session dropped). The default action of SIGTERM and SIGHUP is death on the
  spot: no ``finally`` runs, and every kernel-persistent object the command made (shared
  memory, semaphores, message queues) stays behind. So while :func:`record_interrupts` is
  active, all three unwind the command like Ctrl-C (``KeyboardInterrupt``): cleanup runs,
  and the command exits with 128 + the signal's number (130, 143, 129), as a shell reports a
  death by that signal.
* CPython's C-level handler only sets a flag; the interpreter later runs the Python handler in
  the main thread. An exception it raises inside a weakref callback or a ``__del__`` is
  printed as "Exception ignored" and dropped; a C extension that checks signals itself
  (posix_ipc on EINTR) may replace it with its own exception. The command then runs on as if
  nothing had happened. So each signal is first written down in a record, and whoever holds
  the record can tell afterwards that it came, whichever way the exception went.
* A signal that is ignored (``nohup`` ignores SIGHUP, a background job SIGINT) is left
  ignored; one whose handler was set from C is left alone.
* The same signal often comes twice at once: ``timeout`` sends it to the command and then to
  the command's whole process group, and a peer's death can follow a Ctrl-C. A second
  ``KeyboardInterrupt`` raised while the first is unwinding could land in a ``finally`` block
  before it removes a kernel object. So a signal within :data:`REPEAT_S` of the first is
  recorded, not raised; one that comes later (the user pressing Ctrl-C again, because the
  first was swallowed) unwinds again.

For a server's event loop (the demo daemon, ``serve``), :class:`SignalPipe` is the other way:
the self-pipe trick, signals read as bytes from a descriptor the loop already polls.

See also: signal(7), the ``signal`` module's notes on handlers and the main thread,
``signal.set_wakeup_fd``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType

__all__ = ["INTERRUPTS", "REPEAT_S", "InterruptRecord", "SignalPipe", "record_interrupts"]

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
REPEAT_S = 1.0  # s: a signal this soon after the first is part of the same interruption


@dataclass
class InterruptRecord:
    """The first interrupting signal that arrived while the record was active, if any."""

    signum: int | None = None
    at: float = 0.0  # time.monotonic() of the last interruption raised

    @property
    def seen(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: what a shell reports for a death by that signal."""
        assert self.signum is not None
        return 128 + self.signum

    @property
    def name(self) -> str:
        assert self.signum is not None
        return signal.Signals(self.signum).name


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the default action, made an unwinding one


@contextlib.contextmanager
def record_interrupts() -> Iterator[InterruptRecord]:
    """Record SIGINT, SIGTERM and SIGHUP in the yielded record, then pass each to the handler
    that was there (SIGINT's default raises ``KeyboardInterrupt``; SIGTERM's and SIGHUP's
    default, death, becomes ``KeyboardInterrupt`` too).

    Must be entered in the main thread (only it may set signal handlers). Nests: an inner
    record passes the signal on to the outer one, so both see it.
    """
    record = InterruptRecord()
    restore: list[tuple[int, Callable[[int, FrameType | None], object] | int]] = []

    def install(sig: int, previous: Callable[[int, FrameType | None], object]) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            now = time.monotonic()
            if record.signum is None:
                record.signum = signum
            elif now - record.at < REPEAT_S:
                return  # the same interruption, still unwinding: let its cleanup finish
            record.at = now
            previous(signum, frame)  # normally raises KeyboardInterrupt

        signal.signal(sig, on_signal)

    try:
        for sig in INTERRUPTS:
            previous = signal.getsignal(sig)
            if previous is None or previous == signal.SIG_IGN:
                continue  # set from C, or ignored (nohup): not ours to change
            restore.append((sig, previous))
            install(sig, _interrupt if previous == signal.SIG_DFL else previous)  # type: ignore[arg-type]
        yield record
    finally:
        for signum, handler in reversed(restore):
            signal.signal(signum, handler)


_NAMED = frozenset(signal.Signals)  # a real-time signal's number has no name: not ours


class SignalPipe:
    """Signals as bytes on a pipe that an event loop polls beside its sockets (the self-pipe
    trick, as ``signal.set_wakeup_fd`` does it).

    A loop blocked in epoll_wait(2) or zmq_poll would not wake for a Python-level handler: the
    interpreter runs those between bytecodes, after the blocking call returns. With a wakeup fd,
    CPython's C-level handler writes the signal's number to this non-blocking pipe, so
    :attr:`fd` becomes readable and the loop wakes; the Python handler does nothing, and the
    loop reads the numbers with :meth:`read` and acts on them in its own time (a handler that
    only records, as TLPI teaches). Main thread only; one wakeup fd per process.
    """

    fd = -1  # the read end, for the loop's poll set
    _write_end = -1

    def __init__(self, signals: Iterable[signal.Signals]) -> None:
        self._old: dict[signal.Signals, signal.Handlers | Callable[..., object] | int | None] = {}
        self.fd, self._write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            signal.set_wakeup_fd(self._write_end, warn_on_full_buffer=False)
            for sig in signals:
                self._old[sig] = signal.signal(sig, _record_only)
        except BaseException:
            self.close()
            raise

    def read(self) -> list[signal.Signals]:
        """The signals that came since the last read, oldest first (none: an empty list).

        The C-level handler writes the number of *every* signal that has a Python handler in
        this process, not only those given here: the caller picks the ones it acts on."""
        try:
            data = os.read(self.fd, 64)
        except BlockingIOError:
            return []
        return [signal.Signals(n) for n in data if n in _NAMED]

    def close(self, restore: bool = True) -> None:
        """Stop writing signals to the pipe and close it (twice is harmless). *restore* puts the
        previous handlers back; a daemon about to exit passes False, so that a late SIGTERM
        still ends it with its own exit status rather than by the default action."""
        if restore:
            for sig, old in self._old.items():
                signal.signal(sig, old)
        self._old.clear()
        if self._write_end >= 0:
            signal.set_wakeup_fd(-1)
            os.close(self.fd)
            os.close(self._write_end)
            self.fd = self._write_end = -1


def _record_only(signum: int, frame: FrameType | None) -> None:
    """Nothing to do here: the wakeup fd already carries the signal's number to the loop."""

