"""What one client, or an exhausted resource, may take from the daemon: its limits.

Facts about a daemon under pressure:

* accept(2) failing for want of a resource (``EMFILE``...) is a pause, not an end: see
  :mod:`daemonkit.backoff`.
* pthread_create(3) fails with ``EAGAIN`` at ``RLIMIT_NPROC`` or a cgroup's ``pids.max``
  (Python raises ``RuntimeError: can't start new thread``): the client whose session needed
  the thread is refused, and what was made for it is removed.
* Every limit below is per daemon and shown by ``status`` under ``limits``, with how often
  each was hit. A client over a limit gets an error reply or its connection closed; no
  other client notices.

Kernel path: none; the budgets are plain counters under a lock.

Lifetime: one :class:`Limits` and one :class:`Budget` per resource for the daemon's life.

See also: getrlimit(2) RLIMIT_NPROC, pthread_create(3), :mod:`daemonkit.backoff`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass

__all__ = [
    "BYTES_IN_FLIGHT",
    "LIMITS",
    "SHM_BYTES",
    "Budget",
    "Limits",
    "budgets",
    "uid_of",
]


@dataclass(frozen=True)
class Limits:
    """The daemon's limits (documented in the reliability page; shown by ``status``)."""

    control_clients: int = 512  # control connections at once, all users together
    control_clients_per_uid: int = 256  # ... of one user (SO_PEERCRED uid)
    sessions_per_client: int = 8  # endpoint sessions one control connection may hold open
    stream_clients: int = 128  # unix-stream connections at once (each has a thread)
    bytes_in_flight: int = 256 * 1024 * 1024  # echo buffers of all sessions together
    bytes_in_flight_per_uid: int = 160 * 1024 * 1024  # ... of one user's sessions
    shm_bytes: int = 512 * 1024 * 1024  # posix-shm segments of all clients together
    shm_bytes_per_uid: int = 320 * 1024 * 1024  # ... of one user's clients
    message_deadline_s: float = 10.0  # once a message has begun, all of it, and its echo

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


LIMITS = Limits()


class Budget:
    """A count of something (bytes) shared by threads, that may not exceed *total* for all
    users together, nor *per_user* for one (so one user cannot take it all)."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total = total
        self.per_user = per_user
        self.used = 0
        self.by_user: dict[int, int] = {}
        self.refused = 0  # how often a take did not fit
        self._lock = threading.Lock()

    def take(self, n: int, uid: int) -> bool:
        """Take *n* for *uid* if it fits both limits; False (and counted) if not."""
        with self._lock:
            mine = self.by_user.get(uid, 0)
            if self.used + n > self.total or mine + n > self.per_user:
                self.refused += 1
                return False
            self.used += n
            self.by_user[uid] = mine + n
            return True

    def give(self, n: int, uid: int) -> None:
        with self._lock:
            self.used -= n
            left = self.by_user.get(uid, 0) - n
            if left > 0:
                self.by_user[uid] = left
            else:
                self.by_user.pop(uid, None)

    def as_dict(self) -> dict[str, int]:
        return {
            "used": self.used,
            "total": self.total,
            "per_user": self.per_user,
            "users": len(self.by_user),
            "refused": self.refused,
        }


# the stream endpoints' echo buffers; the posix-shm endpoint's segments
BYTES_IN_FLIGHT = Budget(LIMITS.bytes_in_flight, LIMITS.bytes_in_flight_per_uid)
SHM_BYTES = Budget(LIMITS.shm_bytes, LIMITS.shm_bytes_per_uid)


def budgets() -> dict[str, dict[str, int]]:
    """Each budget's use, for ``status``."""
    return {"bytes_in_flight": BYTES_IN_FLIGHT.as_dict(), "shm_bytes": SHM_BYTES.as_dict()}


def uid_of(pid: int) -> int:
    """The effective uid of process *pid* (the owner of /proc/PID), -1 if it is gone: the
    user a client's share of a budget is counted for."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1
