"""``posix-shm``: a POSIX shared memory buffer per client, handed back and forth by two POSIX
semaphores; the daemon copies each message out and back in (a real echo, two copies).

The layout is :mod:`daemonkit.channels.shm_layout`'s (a length word, then the message) and the
turn-taking that of :mod:`daemonkit.channels.posix_shm`: the client owns the buffer until it
posts ``to-server``, the daemon until it posts ``to-client``. Here the *daemon* creates the
objects (on the client's ``open`` request, sized for the ``max_size`` it asks for) and the
client opens them by name.

Kernel path: shm_open(3) + ftruncate(2) + posix_fallocate(3) + mmap(2) on both sides; no
system call per message except the futex wake/wait inside sem_post(3)/sem_wait(3) when the
other side sleeps; the bytes move by memcpy into and out of the shared pages.

Facts about ending a session: the daemon's thread sleeps in sem_wait and cannot see a client
die. The client's control connection can: when it closes (the client closed, or died and the
kernel closed it), the release writes a stop mark into the length word and posts
``to-server``; the thread wakes, sees the mark and leaves; then the names are unlinked.

Lifetime: kernel-persistent objects ``/dev/shm/dk.PID.posix-shm.N`` and
``/dev/shm/sem.dk.PID.posix-shm.N.to-{server,client}`` (0600), unlinked when the client's
connection closes or the daemon stops; after a SIGKILL, ``daemonkit cleanup`` finds them by
the daemon's pid in their names.

See also: shm_overview(7), sem_overview(7), mmap(2), futex(2).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from collections.abc import Callable
from typing import Any

import posix_ipc

from daemonkit.channels._ipc import posix_interrupted
from daemonkit.channels.base import End, PayloadEnd
from daemonkit.channels.shm_layout import buffer_size, split
from daemonkit.errors import ChannelError, SizeNotSupportedError
from daemonkit.service.endpoints.base import ClientEnd, Endpoint, Session, start_thread
from daemonkit.service.limits import LIMITS, SHM_BYTES
from daemonkit.service.trust import TrustedDir, UntrustedError

__all__ = ["ShmClientEnd", "ShmEndpoint"]

_STOP = 2**64 - 1  # a length no message has: "leave now"
MAX_SHM = 256 * 1024 * 1024
_MODE = 0o600


class _Objects:
    """The segment (mapped) and the semaphore pair of one session."""

    def __init__(self, base: str, size: int, create: bool, owner: int | None = None) -> None:
        flags = posix_ipc.O_CREX if create else 0
        self.names = [base, f"{base}.to-server", f"{base}.to-client"]
        if owner is not None:  # a client: every object must be the daemon user's and private
            for sem in self.names[1:]:
                _check_owner(os.lstat(f"/dev/shm/sem.{sem[1:]}"), owner, sem)
        shm = posix_ipc.SharedMemory(base, flags, _MODE, buffer_size(size) if create else 0)
        try:
            if owner is not None:
                _check_owner(os.fstat(shm.fd), owner, base)
            if create:
                os.posix_fallocate(shm.fd, 0, buffer_size(size))  # ENOSPC now, not SIGBUS later
            self.pages = mmap.mmap(shm.fd, shm.size)  # MAP_SHARED
        finally:
            shm.close_fd()  # the mapping keeps the pages
        self.view = memoryview(self.pages)
        self.length, self.data = split(self.view)
        self.to_server = posix_ipc.Semaphore(f"{base}.to-server", flags, _MODE, 0)
        self.to_client = posix_ipc.Semaphore(f"{base}.to-client", flags, _MODE, 0)

    def unmap(self) -> None:
        self.length.release()
        self.data.release()
        self.view.release()
        self.pages.close()
        self.to_server.close()
        self.to_client.close()

    def unlink(self) -> None:
        with contextlib.suppress(posix_ipc.ExistentialError):
            posix_ipc.unlink_shared_memory(self.names[0])
        for name in self.names[1:]:
            with contextlib.suppress(posix_ipc.ExistentialError):
                posix_ipc.unlink_semaphore(name)


class ShmEndpoint(Endpoint):
    name = "posix-shm"

    def start(self) -> None:
        self._releases: set[Callable[[], None]] = set()

    @staticmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        what = "posix-shm reply"
        shm = reply.get("name")
        if not isinstance(shm, str) or not shm.startswith("/"):
            raise UntrustedError(f"{what}: 'name' is not a POSIX object name")
        rdir.object_name(shm[1:], daemon_pid, "posix-shm", what)
        return ShmClientEnd(shm, rdir.uid)

    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        size = req.get("max_size")
        if not isinstance(size, int) or not 0 <= size <= MAX_SHM:
            return {"error": f"posix-shm: max_size must be 0..{MAX_SHM}"}, lambda: None
        if not SHM_BYTES.take(size):
            return {"error": f"posix-shm: limit: {LIMITS.shm_bytes} bytes mapped"}, lambda: None
        base = self.object_name(posix=True)
        try:
            objs = _Objects(base, size, create=True)
        except (posix_ipc.Error, OSError, ValueError) as exc:
            SHM_BYTES.give(size)
            _unlink_names(base)
            return {"error": f"posix-shm: {base}: {exc}"}, lambda: None
        session = self.new_session()
        try:
            worker = start_thread(lambda: self._serve(objs, session), f"{self.name}-client")
        except ChannelError:  # no thread to serve it: undo everything made for this client
            self.end_session(session)
            objs.unlink()
            objs.unmap()
            SHM_BYTES.give(size)
            raise

        def release() -> None:
            self._releases.discard(release)
            self.end_session(session)
            objs.length[0] = _STOP  # the thread is in sem_wait (the client is gone or done)
            objs.to_server.release()
            worker.join(1.0)
            objs.unlink()  # the names go now; the pages with the last mapping
            if not worker.is_alive():
                objs.unmap()
            SHM_BYTES.give(size)

        self._releases.add(release)
        return {"name": base, "size": size}, release

    def _serve(self, objs: _Objects, session: Session) -> None:
        private = memoryview(bytearray(len(objs.data)))
        length, data = objs.length, objs.data
        wait, post = objs.to_server.acquire, objs.to_client.release
        while True:
            wait()  # futex sleep until the client hands the buffer over
            n = length[0]
            if n == _STOP:
                return
            private[:n] = data[:n]  # the "receive": copy out of the shared pages
            data[:n] = private[:n]  # the "send": copy back in
            session.echoes += 1
            post()

    def stop(self) -> None:
        for release in list(getattr(self, "_releases", ())):
            release()


def _unlink_names(base: str) -> None:
    with contextlib.suppress(posix_ipc.ExistentialError):
        posix_ipc.unlink_shared_memory(base)
    for suffix in (".to-server", ".to-client"):
        with contextlib.suppress(posix_ipc.ExistentialError):
            posix_ipc.unlink_semaphore(base + suffix)


def _check_owner(st: os.stat_result, owner: int, name: str) -> None:
    if not stat.S_ISREG(st.st_mode) or st.st_uid != owner or st.st_mode & 0o077:
        raise ChannelError(
            "posix-shm", f"{name}: not a private object of the daemon's user {owner}"
        )


class ShmClientEnd(PayloadEnd, ClientEnd):
    """The client's side: opens the daemon's segment and semaphores by name, and refuses any
    that is not a private object of the daemon's user *owner*."""

    def __init__(self, base: str, owner: int) -> None:
        try:
            self._objs = _Objects(base, 0, create=False, owner=owner)
        except (posix_ipc.Error, OSError) as exc:
            raise ChannelError("posix-shm", f"open {base}: {exc}") from exc

    def send(self, data: memoryview) -> None:
        n = len(data)
        objs = self._objs
        if n > len(objs.data):
            raise SizeNotSupportedError("posix-shm", f"{n} bytes > buffer of {len(objs.data)}")
        objs.data[:n] = data
        objs.length[0] = n
        objs.to_server.release()

    def recv_into(self, buf: memoryview) -> int:
        objs = self._objs
        while True:
            try:
                objs.to_client.acquire()  # futex sleep until the daemon hands it back
                break
            except posix_ipc.Error as exc:  # EINTR: see daemonkit.channels._ipc
                posix_interrupted(exc, "posix-shm", "sem_wait")
        n = objs.length[0]
        buf[:n] = objs.data[:n]
        return n

    def _close(self) -> None:
        try:
            self._objs.unmap()
        finally:
            self._release_control()  # the daemon's release unlinks the names
