"""How a listener lives through accept(2) failing for want of a resource.

Facts about accept(2) under pressure:

* accept(2) fails with ``EMFILE`` (this process is at ``RLIMIT_NOFILE``), ``ENFILE`` (the
  system is at ``fs.file-max``), ``ENOMEM`` or ``ENOBUFS``. None of these says anything about
  the listening socket: the connection stays queued and the socket stays readable. Ending
  the loop (or the thread) would turn a passing shortage into a dead endpoint; retrying at
  once would spin. So the listener backs off (10 ms, doubling up to 1 s), logs once per
  streak, and goes on; a success resets the delay (:class:`AcceptBackoff`).
* ``ECONNABORTED``: the client gave up while queued. Nothing to do but accept the next.

Used by the daemon's control loop and its ``unix-stream`` endpoint
(:mod:`daemonkit.service`) and by ``daemonkit serve`` (:mod:`daemonkit.remote`).

Kernel path: accept4(2) and its errors; the waiting is the caller's (a sleep in a thread of
its own, or the listener left out of the next poll).

Lifetime: one :class:`AcceptBackoff` per listener.

See also: accept(2) ERRORS, getrlimit(2) RLIMIT_NOFILE, proc(5) /proc/sys/fs/file-max.
"""

from __future__ import annotations

import errno

__all__ = ["TEMPORARY_ACCEPT_ERRORS", "AcceptBackoff"]

TEMPORARY_ACCEPT_ERRORS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS, errno.ECONNABORTED}
)


class AcceptBackoff:
    """How long a listener waits after accept(2) failed for want of a resource."""

    FIRST, LAST = 0.01, 1.0

    def __init__(self) -> None:
        self.delay = 0.0
        self.failures = 0  # every temporary failure, for status
        self.last_error: str | None = None

    def failed(self, exc: OSError) -> float | None:
        """The delay before the next accept, or None if *exc* is not a temporary failure.
        A new streak (the first failure after a success) is what the caller should log."""
        if exc.errno not in TEMPORARY_ACCEPT_ERRORS:
            return None
        if exc.errno == errno.ECONNABORTED:
            return 0.0
        self.failures += 1
        self.last_error = exc.strerror or str(exc)
        self.delay = min(self.LAST, self.delay * 2) if self.delay else self.FIRST
        return self.delay

    @property
    def new_streak(self) -> bool:
        return self.delay == self.FIRST

    def succeeded(self) -> None:
        self.delay = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"failures": self.failures, "last_error": self.last_error}
