"""``posix-sem``: two named POSIX semaphores, one per direction. A notification: no payload.

Kernel path: ``sem_open(3)`` creates ``/dev/shm/sem.NAME`` and maps it; the semaphore is a
counter in that shared page. ``sem_post(3)`` increments it with an atomic instruction and
enters the kernel (``futex(FUTEX_WAKE)``) only when a waiter sleeps; ``sem_wait(3)`` decrements
it in user space when it is above 0 and otherwise sleeps in ``futex(FUTEX_WAIT)``. So a
round trip between two processes costs two futex waits and two wakes, and no copies: no bytes
move, the peer learns only *that* the other side posted (hence no ``send``).

Lifetime: kernel-persistent. The name lives in ``/dev/shm`` (a tmpfs) until ``sem_unlink(3)``
or a reboot, whoever has it open; the creator unlinks both in ``Channel.close()``, a forked
peer never does. A mapping already open stays usable after the unlink, like an unlinked file.
Names carry the creator's pid (``/dk.PID.posix-sem.N``), so ``daemonkit cleanup`` finds the
semaphores of a creator killed by SIGKILL.

See also: sem_overview(7), sem_open(3), sem_post(3), sem_wait(3), sem_unlink(3), futex(2).
"""

from __future__ import annotations

import contextlib

import posix_ipc

from daemonkit.channels._ipc import MODE, LocalHandles, ipc_error, posix_interrupted
from daemonkit.channels.base import Channel, NotifyEnd, PeerKind, Role
from daemonkit.errors import ChannelError
from daemonkit.runtime import object_name

__all__ = ["PosixSemChannel", "PosixSemEnd", "SemaphorePair"]


class SemaphorePair:
    """``BASE.to-server`` and ``BASE.to-client``, value 0, mode 0600: both made, or neither."""

    def __init__(self, channel: str, base: str, handles: LocalHandles) -> None:
        self.channel = channel
        self.handles = handles
        self._names: list[str] = []
        sems: list[posix_ipc.Semaphore] = []
        try:
            for direction in ("to-server", "to-client"):
                name = f"{base}.{direction}"
                # sem_open(O_CREAT|O_EXCL): fails rather than adopt someone else's semaphore
                sems.append(posix_ipc.Semaphore(name, posix_ipc.O_CREX, MODE, 0))
                self._names.append(name)
                handles.on_release(sems[-1].close)  # sem_close: munmap in this process
        except (posix_ipc.Error, OSError, ValueError) as exc:
            self.unlink()  # the caller's close() releases what *handles* holds
            raise ChannelError(channel, f"sem_open {base}: {exc}") from exc
        self.to_server, self.to_client = sems

    def end(self, role: Role) -> PosixSemEnd:
        """The end that posts to the peer of *role* and waits for it."""
        if role == "client":
            return PosixSemEnd(self, self.to_server, self.to_client)
        return PosixSemEnd(self, self.to_client, self.to_server)

    def unlink(self) -> None:
        """Remove the names: /dev/shm/sem.NAME goes now, open mappings stay usable."""
        names, self._names = self._names, []
        for name in names:
            with contextlib.suppress(posix_ipc.ExistentialError):  # gone already: goal met
                posix_ipc.unlink_semaphore(name)


class PosixSemEnd(NotifyEnd):
    """Posts on one semaphore, waits on the other."""

    def __init__(
        self, pair: SemaphorePair, post_sem: posix_ipc.Semaphore, wait_sem: posix_ipc.Semaphore
    ) -> None:
        self._channel = pair.channel
        self._handles = pair.handles
        self._post = post_sem
        self._wait = wait_sem
        self._handles.end_opened()

    def post(self) -> None:
        try:
            self._post.release()  # atomic increment; futex wake only if the peer sleeps
        except posix_ipc.Error as exc:
            raise ipc_error(exc, self._channel, "sem_post") from exc

    def wait(self) -> None:
        while True:
            try:
                self._wait.acquire()  # atomic decrement, or futex sleep while the value is 0
                return
            except posix_ipc.Error as exc:
                posix_interrupted(exc, self._channel, "sem_wait")

    def _close(self) -> None:
        self._handles.end_closed()  # the last user unmaps the semaphores


class PosixSemChannel(Channel):
    name = "posix-sem"
    summary = "two named POSIX semaphores, one per direction (sem_overview(7)); notification only"
    payload = False

    _pair: SemaphorePair | None = None  # class default: close() is safe after a failed __init__

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._handles = LocalHandles()
        try:
            self._pair = SemaphorePair(self.name, object_name(self.name, posix=True), self._handles)
        except ChannelError:
            self.close()
            raise

    def open(self, role: Role) -> NotifyEnd:
        assert self._pair is not None, "open() after close()"
        return self._pair.end(role)

    def _remove(self) -> None:
        if self._pair is not None:
            self._pair.unlink()
        self._handles.channel_closed()  # unmaps now, or when the last end closes
