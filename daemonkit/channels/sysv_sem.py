"""``sysv-sem``: two System V semaphores, one per direction. A notification: no payload.

Kernel path: a post is ``semop(2)`` with ``sem_op = +1``; a wait is ``semop`` with
``sem_op = -1``, which sleeps while the value is 0 and is woken by the other side's post. Every
post and every wait is a system call, even when nobody is waiting (a POSIX semaphore's
uncontended post stays in user space, see :mod:`daemonkit.channels.posix_sem`). No bytes move:
the peer learns *that* the other side posted, nothing else, so this channel has no ``send``.

Facts about the two sets:

* A System V semaphore set can hold several semaphores, one ``semop`` picking a member with
  ``sembuf.sem_num``. sysv_ipc only makes sets of one (``semget(key, 1, ...)``), so the two
  directions are two sets with two keys; the kernel work per post and wait is the same.
* The value counts posts not yet waited for: a post with nobody waiting is not lost.
* A dead peer leaves no mark. ``SEM_UNDO`` (not used here) would have the kernel revert a
  dead process's adjustments at exit, but it wakes nobody with an error: the survivor would
  still sleep. Only a signal ends that wait (SIGCHLD, see :mod:`daemonkit.channels._ipc`).
* Limits: /proc/sys/kernel/sem holds SEMMSL, SEMMNS, SEMOPM, SEMMNI (semaphores per set, in
  the system, operations per ``semop``, sets in the system); a full table gives ``ENOSPC``.

Lifetime: kernel-persistent. A set outlives every process that used it, until
``semctl(IPC_RMID)`` or a reboot. The creator removes both sets in ``Channel.close()`` (a forked
peer never does); ``IPC_RMID`` wakes anyone still waiting with ``EIDRM``. The keys carry the
creator's pid (:func:`daemonkit.runtime.sysv_key`), so ``daemonkit cleanup`` finds the sets of a
creator killed by SIGKILL.

See also: sysvipc(7), semget(2), semop(2), semctl(2), ipcs(1).
"""

from __future__ import annotations

import sysv_ipc

from daemonkit.channels._ipc import MODE, SysvObject, create_sysv, ipc_error, sysv_interrupted
from daemonkit.channels.base import Channel, NotifyEnd, PeerKind, Role
from daemonkit.errors import ChannelError

__all__ = ["SysvSemChannel"]


def _new_semaphore(key: int) -> sysv_ipc.Semaphore:
    # semget(key, 1, IPC_CREAT|IPC_EXCL|0600); the value starts at 0: nothing posted yet.
    return sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, MODE, 0)


class _SemEnd(NotifyEnd):
    """Posts on one semaphore, waits on the other."""

    def __init__(self, channel: str, post_sem: sysv_ipc.Semaphore, wait_sem: sysv_ipc.Semaphore):
        self._channel = channel
        self._post = post_sem
        self._wait = wait_sem

    def post(self) -> None:
        try:
            self._post.release()  # semop +1: the peer blocked in semop -1 becomes runnable
        except sysv_ipc.Error as exc:
            raise ipc_error(exc, self._channel, "semop +1") from exc

    def wait(self) -> None:
        while True:
            try:
                self._wait.acquire()  # semop -1: sleeps in the kernel while the value is 0
                return
            except sysv_ipc.Error as exc:
                sysv_interrupted(exc, self._channel, "semop -1")

    def _close(self) -> None:
        pass  # a semaphore set has no per-process handle: nothing to let go


class SysvSemChannel(Channel):
    name = "sysv-sem"
    summary = "two System V semaphores, one per direction (semop(2)); notification only"
    payload = False

    _sems: tuple[SysvObject[sysv_ipc.Semaphore], ...] = ()  # close() is safe even when
    # __init__ failed half-way

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        try:
            for _ in range(2):  # to the server, to the client
                self._sems += (create_sysv(self.name, "sem", _new_semaphore),)
        except ChannelError:
            self.close()  # the caller gets no object to close: remove the first set here
            raise

    def open(self, role: Role) -> NotifyEnd:
        to_server, to_client = (s.obj for s in self._sems)
        if role == "client":
            return _SemEnd(self.name, to_server, to_client)
        return _SemEnd(self.name, to_client, to_server)

    def _remove(self) -> None:
        for sem in self._sems:
            sem.remove()  # semctl(IPC_RMID): gone at once, a waiter gets EIDRM; key released
