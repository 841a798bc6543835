"""``posix-shm``: a shared memory buffer per client, handed back and forth by two POSIX
semaphores; the daemon copies each message out and back in (a real echo, two copies).

The layout is :mod:`daemonkit.channels.shm_layout`'s (a length word, then the message) and the
turn-taking that of :mod:`daemonkit.channels.posix_shm`: the client owns the buffer until it
posts ``to-server``, the daemon until it posts ``to-client``. Here the *daemon* creates the
objects (on the client's ``open`` request, sized for the ``max_size`` it asks for); the client
receives the buffer as a descriptor and opens the semaphores by name.

Facts about sharing memory with a client the daemon does not trust:

* A mapping is only as long as the file under it. If a client could ftruncate(2) the segment
  to 0 (any process that can open a ``/dev/shm`` name for writing can), the daemon's next
  access to the mapped pages would die of SIGBUS: one client would stop the daemon. So the
  buffer is not a named POSIX segment but a memfd (memfd_create(2)), sealed with
  ``F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL`` before anyone else sees it: from then on the
  kernel refuses every change of its size, to everyone, the daemon included (EPERM).
* It has no name anyone could open: the daemon passes the descriptor itself, with the reply
  to ``open``, as ``SCM_RIGHTS`` ancillary data on the control connection
  (:data:`daemonkit.service.control.PASS_FDS`). The client checks the seals and the size
  before it maps it, so a daemon cannot shrink it under the client either.
* A length word that claims more than the buffer holds is clipped to the buffer.

Kernel path: memfd_create(2) + ftruncate(2) + posix_fallocate(3) + fcntl(2) ``F_ADD_SEALS``
+ mmap(2) in the daemon; sendmsg(2)/recvmsg(2) with ``SCM_RIGHTS``; fstat(2), fcntl(2)
``F_GET_SEALS`` and mmap(2) in the client; no system call per message except the futex
wake/wait inside sem_post(3)/sem_wait(3) when the other side sleeps; the bytes move by
memcpy into and out of the shared pages.

Facts about ending a session: the daemon's thread sleeps in sem_wait and cannot see a client
die. The client's control connection can: when it closes (the client closed, or died and the
kernel closed it), the release writes a stop mark into the length word and posts
``to-server``; the thread wakes, sees the mark and leaves; then the names are unlinked.

Lifetime: the buffer is process-persistent: its pages go with the last mapping or descriptor
(``memfd:dk.PID.posix-shm.N`` in /proc/PID/maps), even after a SIGKILL. The semaphores
``/dev/shm/sem.dk.PID.posix-shm.N.to-{server,client}`` (0600) are kernel-persistent,
unlinked when the client's connection closes or the daemon stops; after a SIGKILL,
``daemonkit cleanup`` finds them by the daemon's pid in their names.

See also: memfd_create(2), fcntl(2) "File Sealing", unix(7) SCM_RIGHTS, sem_overview(7),
mmap(2) SIGBUS, futex(2).
"""

from __future__ import annotations

import contextlib
import fcntl
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
from daemonkit.service.control import PASS_FDS
from daemonkit.service.endpoints.base import ClientEnd, Endpoint, Session, start_thread
from daemonkit.service.limits import LIMITS, SHM_BYTES, uid_of
from daemonkit.service.trust import TrustedDir, UntrustedError

__all__ = ["ShmClientEnd", "ShmEndpoint"]

_STOP = 2**64 - 1  # a length no message has: "leave now"
MAX_SHM = 256 * 1024 * 1024
_MODE = 0o600


_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW  # what makes the mapping safe to touch


class _Objects:
    """The buffer (a sealed memfd, mapped) and the semaphore pair of one session.

    The daemon creates them (*fd* None): ``self.fd`` is then the memfd to pass to the client.
    A client hands in the *fd* it received; the semaphores it opens by name, after checking
    that they belong to the daemon's user *owner*.
    """

    fd = -1

    def __init__(
        self, base: str, size: int, fd: int | None = None, owner: int | None = None
    ) -> None:
        create = fd is None
        flags = posix_ipc.O_CREX if create else 0
        self.names = [f"{base}.to-server", f"{base}.to-client"]
        if owner is not None:  # a client: every object must be the daemon user's and private
            for sem in self.names:
                _check_owner(os.lstat(f"/dev/shm/sem.{sem[1:]}"), owner, sem)
        self.fd = _sealed_buffer(base, size) if fd is None else fd
        if not create:
            _check_buffer(self.fd, owner)
        self.pages = mmap.mmap(self.fd, os.fstat(self.fd).st_size)  # MAP_SHARED
        if not create:
            self.fd = -1  # the client needs the mapping only; its caller closes the descriptor
        self.view = memoryview(self.pages)
        self.length, self.data = split(self.view)
        self.to_server = posix_ipc.Semaphore(self.names[0], flags, _MODE, 0)
        self.to_client = posix_ipc.Semaphore(self.names[1], flags, _MODE, 0)

    def give_fd(self) -> int:
        """The memfd, for the reply; the caller owns it from here (it closes it once sent)."""
        fd, self.fd = self.fd, -1
        return fd

    def unmap(self) -> None:
        self.length.release()
        self.data.release()
        self.view.release()
        self.pages.close()
        self.to_server.close()
        self.to_client.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def unlink(self) -> None:
        for name in self.names:
            with contextlib.suppress(posix_ipc.ExistentialError):
                posix_ipc.unlink_semaphore(name)


def _sealed_buffer(base: str, size: int) -> int:
    """A memfd of buffer_size(*size*) bytes, its pages allocated, its size sealed for good."""
    fd = os.memfd_create(base.lstrip("/"), os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, buffer_size(size))
        os.posix_fallocate(fd, 0, buffer_size(size))  # ENOSPC now, not SIGBUS later
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS | fcntl.F_SEAL_SEAL)  # no one undoes them
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_buffer(fd: int, owner: int | None) -> None:
    """In the client: the descriptor must be a regular file of the daemon's user whose size
    no one can change, before it is mapped."""
    st = os.fstat(fd)
    if owner is not None and st.st_uid != owner:
        raise UntrustedError(f"posix-shm: the buffer belongs to uid {st.st_uid}, not {owner}")
    if not stat.S_ISREG(st.st_mode) or st.st_size < buffer_size(0):
        raise UntrustedError("posix-shm: the descriptor passed is not a buffer")
    if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & _SEALS != _SEALS:
        raise UntrustedError("posix-shm: the buffer's size is not sealed (it could shrink)")


class ShmEndpoint(Endpoint):
    name = "posix-shm"

    def start(self) -> None:
        self._releases: set[Callable[[], None]] = set()

    passes_fd = True

    @staticmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        raise UntrustedError("posix-shm reply: no descriptor came with it")

    @staticmethod
    def client_end_with_fd(
        reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int, fd: int
    ) -> End:
        what = "posix-shm reply"
        try:
            base = reply.get("name")
            if not isinstance(base, str) or not base.startswith("/"):
                raise UntrustedError(f"{what}: 'name' is not a POSIX object name")
            rdir.object_name(base[1:], daemon_pid, "posix-shm", what)
        except BaseException:
            os.close(fd)
            raise
        return ShmClientEnd(base, fd, rdir.uid)

    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        size = req.get("max_size")
        if not isinstance(size, int) or not 0 <= size <= MAX_SHM:
            return {"error": f"posix-shm: max_size must be 0..{MAX_SHM}"}, lambda: None
        uid = uid_of(client_pid)
        if not SHM_BYTES.take(size, uid):
            return {
                "error": f"posix-shm: limit: {LIMITS.shm_bytes} bytes mapped for all clients, "
                f"{LIMITS.shm_bytes_per_uid} for one user"
            }, lambda: None
        base = self.object_name(posix=True)
        try:
            objs = _Objects(base, size)
        except (posix_ipc.Error, OSError, ValueError) as exc:
            SHM_BYTES.give(size, uid)
            _unlink_names(base)
            return {"error": f"posix-shm: {base}: {exc}"}, lambda: None
        session = self.new_session()
        try:
            worker = start_thread(lambda: self._serve(objs, session), f"{self.name}-client")
        except ChannelError:  # no thread to serve it: undo everything made for this client
            self.end_session(session)
            objs.unlink()
            objs.unmap()
            SHM_BYTES.give(size, uid)
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
            SHM_BYTES.give(size, uid)

        self._releases.add(release)
        # The memfd travels with the reply (SCM_RIGHTS); the connection closes our copy.
        return {"name": base, "size": size, PASS_FDS: [objs.give_fd()]}, release

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
    for suffix in (".to-server", ".to-client"):
        with contextlib.suppress(posix_ipc.ExistentialError):
            posix_ipc.unlink_semaphore(base + suffix)


def _check_owner(st: os.stat_result, owner: int, name: str) -> None:
    if not stat.S_ISREG(st.st_mode) or st.st_uid != owner or st.st_mode & 0o077:
        raise ChannelError(
            "posix-shm", f"{name}: not a private object of the daemon's user {owner}"
        )


class ShmClientEnd(PayloadEnd, ClientEnd):
    """The client's side: maps the buffer the daemon passed (*fd*, which it takes over) and
    opens the semaphores by name, refusing any object not the daemon's user's (*owner*)."""

    def __init__(self, base: str, fd: int, owner: int) -> None:
        try:
            self._objs = _Objects(base, 0, fd=fd, owner=owner)
        except (posix_ipc.Error, OSError) as exc:
            raise ChannelError("posix-shm", f"open {base}: {exc}") from exc
        finally:
            os.close(fd)  # mapped, or refused: either way no longer needed

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
