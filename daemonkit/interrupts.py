"""A Ctrl-C that is remembered even where Python drops it.

Facts about SIGINT in CPython:

* The C-level handler only sets a flag; the interpreter later runs the Python handler in the
  main thread, and the default one raises ``KeyboardInterrupt`` wherever that thread is.
* Raised inside a weakref callback or a ``__del__`` it is printed as "Exception ignored" and
  dropped; a C extension that checks signals itself (posix_ipc on EINTR) may replace it with
  its own exception. The command then runs on as if nothing had happened.

So while :func:`record_sigint` is active, each SIGINT is first written down in a record and
then handled exactly as before (the previous handler runs: normally ``KeyboardInterrupt``).
Whoever holds the record can tell afterwards that the user asked to stop, whichever way the
exception went. A SIGINT that is ignored (``nohup``, a background job) is left ignored.

See also: signal(7), the ``signal`` module's notes on handlers and the main thread.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

__all__ = ["SigintRecord", "record_sigint"]


@dataclass
class SigintRecord:
    """Whether SIGINT arrived while the record was active."""

    seen: bool = False


@contextlib.contextmanager
def record_sigint() -> Iterator[SigintRecord]:
    """Record every SIGINT in the yielded record, then pass it to the handler that was there.

    Must be entered in the main thread (only it may set signal handlers). Nests: an inner
    record passes the signal on to the outer one, so both see it.
    """
    record = SigintRecord()
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN or SIG_DFL (or set from C): not ours to change
        yield record
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        record.seen = True
        previous(signum, frame)  # normally raises KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield record
    finally:
        signal.signal(signal.SIGINT, previous)
