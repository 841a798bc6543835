"""The daemon's log lines, and why a full disk does not stop the daemon.

The daemon writes one line per event to its standard error: the log file, ``/dev/null``, or
(under systemd) the journal's socket.

Facts about a failed log write:

* write(2) to a file on a full file system fails with ``ENOSPC`` (``/dev/full`` always
  does); one past the size limit (``RLIMIT_FSIZE``) with ``EFBIG`` once SIGXFSZ is ignored;
  a journal that went away with ``EPIPE``. None of these is the daemon's clients' business:
  a line that cannot be written is *counted* (``status`` shows ``log_failures`` and the last
  reason) and the daemon serves on. The one exception is the first line, written during
  initialization: a log that takes nothing at start is a configuration error, reported to
  the starter with its reason (:class:`~daemonkit.errors.DaemonStartError`).
* Lines go out with one write(2) of the bytes, not through Python's buffered ``sys.stderr``:
  after a failure the buffer would keep the failed line and fail again at every later print.

Kernel path: write(2) on descriptor 2.

Lifetime: counters live as long as the process.

See also: write(2) ENOSPC/EFBIG, :mod:`daemonkit.service.server`.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["LogStats", "log", "log_stats"]


class LogStats:
    """Lines written and lines lost, and the reason for the last loss."""

    def __init__(self) -> None:
        self.lines = 0
        self.failures = 0
        self.last_error: str | None = None
        self.lock = threading.Lock()  # endpoint threads log too

    def as_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "failures": self.failures, "last_error": self.last_error}


log_stats = LogStats()


def log(msg: str) -> OSError | None:
    """Write one stamped line to stderr; return the error if it could not be written."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    data = f"{stamp} daemonkit[{os.getpid()}]: {msg}\n".encode(errors="replace")
    with log_stats.lock:
        try:
            while data:
                data = data[os.write(2, data) :]
        except OSError as exc:
            log_stats.failures += 1
            log_stats.last_error = exc.strerror or str(exc)
            return exc
        log_stats.lines += 1
    return None
