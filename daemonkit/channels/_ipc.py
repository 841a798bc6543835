"""What the System V and POSIX IPC channels share: keys, kernel limits, waits a signal ends.

Facts about a wait interrupted by a signal:

* A client blocked on a dead peer is freed by a signal whose Python handler raises (SIGCHLD or
  SIGALRM, see :mod:`daemonkit.bench.peer`). The kernel makes semop(2), msgrcv(2), sem_wait(3)
  and mq_receive(3) return ``EINTR``; what the caller sees next depends on the binding.
* sysv_ipc raises its base class ``sysv_ipc.Error`` itself (that exact class means ``EINTR``)
  and leaves the Python handler pending. :func:`sysv_interrupted` runs it at once
  (``signal.pthread_sigmask`` ends with CPython's ``PyErr_CheckSignals``): a handler that raises
  ends the wait with *its* exception; one that returns lets the caller retry, as PEP 475 does
  for the ``os`` module.
* posix_ipc runs the handler itself and replaces whatever it raised (KeyboardInterrupt apart)
  with ``posix_ipc.SignalError``, so the handler's exception is lost and a handler that raised
  cannot be told from one that returned. :func:`posix_interrupted` therefore ends the wait with
  :class:`ChannelError` in the main thread, the only thread that runs handlers (a retry could
  hang on a dead peer forever); other threads never run handlers, and they retry.
* A wait that finds its object removed (``EIDRM``, or the POSIX equivalent) means the creator
  has closed the channel: the peer is gone, :class:`PeerDiedError`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import posix_ipc
import sysv_ipc

from daemonkit.errors import ChannelError, PeerDiedError
from daemonkit.runtime import SysvKind, claim_sysv_index, release_sysv_index, sysv_key

__all__ = [
    "MODE",
    "LocalHandles",
    "SysvObject",
    "create_sysv",
    "has_cap_sys_resource",
    "ipc_error",
    "posix_interrupted",
    "read_limit",
    "sysv_interrupted",
]

MODE = 0o600  # owner read/write only: no other user may post, read or map our objects
_CAP_SYS_RESOURCE = 24  # capability(7) bit: lets a process exceed msgmnb and mqueue limits


class _Removable(Protocol):
    def remove(self) -> None: ...  # IPC_RMID, in sysv_ipc's objects


T = TypeVar("T", bound=_Removable)


def read_limit(path: str) -> int:
    """A kernel limit from /proc/sys (e.g. ``/proc/sys/kernel/msgmax``)."""
    return int(Path(path).read_text().split()[0])


def has_cap_sys_resource() -> bool:
    """True when this process may raise IPC limits beyond the sysctl ceilings (capabilities(7)).

    Being root is not enough: containers often drop CAP_SYS_RESOURCE.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)
    return False


class SysvObject(Generic[T]):
    """A System V object this process created, with the key index it holds for it."""

    def __init__(self, kind: SysvKind, index: int, obj: T) -> None:
        self.kind = kind
        self.index = index
        self.obj = obj
        self._removed = False

    def remove(self) -> None:
        """``IPC_RMID``, then give the key back; removed already (by cleanup) is fine."""
        if self._removed:
            return
        self._removed = True
        try:
            with contextlib.suppress(sysv_ipc.ExistentialError):
                self.obj.remove()  # the key is free at once; waiters wake with EIDRM
        finally:
            release_sysv_index(self.kind, self.index)


_PRIVATE_INDEX = -1  # an IPC_PRIVATE object holds no index of ours


def create_sysv(channel: str, kind: SysvKind, make: Callable[[int], T]) -> SysvObject[T]:
    """Create a System V object of *kind* with ``make(key)`` under a free key of ours.

    *make* must pass ``IPC_CREX``: a key that exists already belongs to a dead process that
    had our pid (pids are reused), or to another user squatting our keys, and is skipped,
    not adopted. When the keys left are all taken that way, the object is made with
    ``IPC_PRIVATE`` (a key no one else can ever name): the channel works, but after a crash
    ``daemonkit cleanup`` cannot tell the object is ours (``ipcs`` shows its creator's uid).
    """
    what = {"sem": "semget", "shm": "shmget", "msg": "msgget"}[kind]
    taken: set[int] = set()
    while (index := claim_sysv_index(kind, frozenset(taken))) is not None:
        try:
            return SysvObject(kind, index, make(sysv_key(index)))
        except sysv_ipc.ExistentialError:  # EEXIST: a leftover for `daemonkit cleanup`
            release_sysv_index(kind, index)
            taken.add(index)
        except (sysv_ipc.Error, OSError, ValueError) as exc:
            release_sysv_index(kind, index)
            raise ChannelError(channel, f"{what}: {exc}") from exc
    if not taken:  # all four held by this process's own open channels: a limit of ours
        raise ChannelError(
            channel, f"{what}: no free System V key (a process has four, see runtime.sysv_key)"
        )
    try:  # keys taken in the kernel by someone else: a name no one can squat
        return SysvObject(kind, _PRIVATE_INDEX, make(sysv_ipc.IPC_PRIVATE))
    except (sysv_ipc.Error, OSError, ValueError) as exc:
        raise ChannelError(channel, f"{what}: {exc}") from exc


def sysv_interrupted(exc: sysv_ipc.Error, channel: str, what: str) -> None:
    """Handle a failed blocking sysv_ipc call: return to retry it, or raise."""
    if type(exc) is sysv_ipc.Error:  # EINTR: run the pending handler; if it raises, so do we
        signal.pthread_sigmask(signal.SIG_BLOCK, ())
        return
    raise ipc_error(exc, channel, what) from exc


def posix_interrupted(exc: posix_ipc.Error, channel: str, what: str) -> None:
    """Handle a failed blocking posix_ipc call: return to retry it, or raise."""
    if isinstance(exc, posix_ipc.SignalError):
        if threading.current_thread() is not threading.main_thread():
            return  # no handler ran here: nothing was lost, wait again
        raise ChannelError(
            channel, f"{what} interrupted by a signal (posix_ipc drops the handler's exception)"
        ) from exc
    raise ipc_error(exc, channel, what) from exc


def ipc_error(exc: Exception, channel: str, what: str) -> ChannelError:
    """The daemonkit error for a failed sysv_ipc/posix_ipc call (raise it ``from exc``)."""
    if isinstance(exc, sysv_ipc.ExistentialError | posix_ipc.ExistentialError):
        return PeerDiedError(channel, f"{what}: the object was removed ({exc})")
    return ChannelError(channel, f"{what}: {exc}")


class LocalHandles:
    """This process's handles on a channel's objects: mappings, semaphores, descriptors.

    Unlinking a name (or ``IPC_RMID``) removes the object for everyone else at once; the
    handles of this process must outlive every end still using them, since unmapping a page
    a thread is about to touch, or sleeps on, kills the process with SIGSEGV. So they are
    released when the channel is closed *and* its last end is closed, whichever is later
    (a thread peer may close its end after the channel). A forked peer never releases them
    here: its exit does.
    """

    def __init__(self) -> None:
        self._releases: list[Callable[[], object]] = []
        self._ends = 0
        self._channel_closed = False

    def on_release(self, release: Callable[[], object]) -> None:
        """Run *release* (an unmap, a close) when nothing uses the handles any more."""
        self._releases.append(release)

    def end_opened(self) -> None:
        self._ends += 1

    def end_closed(self) -> None:
        self._ends -= 1
        self._release_if_unused()

    def channel_closed(self) -> None:
        self._channel_closed = True
        self._release_if_unused()

    def _release_if_unused(self) -> None:
        if self._channel_closed and self._ends == 0:
            releases, self._releases = self._releases, []
            for release in reversed(releases):  # the reverse of setup order
                release()
