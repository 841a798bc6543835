"""``posix-shm``: one POSIX shared memory buffer, handed back and forth by two semaphores.

Kernel path: ``shm_open(3)`` creates ``/dev/shm/NAME`` (a tmpfs file), ``ftruncate(2)`` sizes
it, ``fallocate(2)`` reserves its pages, ``mmap(2)`` maps it; a forked peer inherits the
mapping. The bytes never pass through a system call: ``send`` copies the message into the
mapping by memoryview slice assignment (copy 1, a ``memcpy``) and stores its length in the
length word (:mod:`daemonkit.channels.shm_layout`); ``recv_into`` copies it out into the
caller's buffer (copy 2). No allocation per message. The handoff is two named POSIX semaphores
(see :mod:`daemonkit.channels.posix_sem`): futex-based, so a post enters the kernel only to wake
a sleeping peer. Their atomic operations also order the memory accesses: what was written before
a post is visible after the matching wait. Shared memory carries the bytes, the semaphores carry
the "your turn".

Facts about the single buffer:

* A round trip is strict turn-taking: the client owns the buffer until it posts
  ``to-server``, the server from then until it posts ``to-client``. Only one side ever
  touches it, so one buffer is enough; a second one (one per direction) would double the
  memory and the cache footprint and buy no concurrency. A send must be followed by a receive.
* Pages are reserved with ``posix_fallocate`` at setup: a full ``/dev/shm`` then fails here
  with ``ENOSPC`` instead of killing the process with SIGBUS at the first write.

Lifetime: kernel-persistent. ``/dev/shm/NAME`` and ``/dev/shm/sem.NAME.*`` stay until
``shm_unlink(3)``/``sem_unlink(3)`` or a reboot; the creator unlinks them in
``Channel.close()``, a forked peer never does. The memory itself goes with the last mapping.
Names carry the creator's pid (``/dk.PID.posix-shm.N``), so ``daemonkit cleanup`` finds what a
creator killed by SIGKILL left.

See also: shm_overview(7), shm_open(3), mmap(2), sem_overview(7), tmpfs(5).
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os

import posix_ipc

from daemonkit.channels._ipc import MODE, LocalHandles
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.channels.posix_sem import PosixSemEnd, SemaphorePair
from daemonkit.channels.shm_layout import buffer_size, split
from daemonkit.errors import ChannelError, SizeNotSupportedError
from daemonkit.runtime import object_name

__all__ = ["PosixShmChannel", "map_new_segment"]


def map_new_segment(channel: str, name: str, size: int, handles: LocalHandles) -> memoryview:
    """Create ``/dev/shm/NAME`` (0600, *size* bytes, pages reserved) and map it shared.

    The mapping is released through *handles*; a failure after the object was created
    unlinks it again before raising (SizeNotSupportedError for a full ``/dev/shm``).
    """
    try:
        # shm_open(O_CREAT|O_EXCL|O_RDWR, 0600) + ftruncate(size)
        shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, MODE, size)
    except (posix_ipc.Error, OSError, ValueError) as exc:
        raise ChannelError(channel, f"shm_open {name}: {exc}") from exc
    try:
        os.posix_fallocate(shm.fd, 0, size)  # tmpfs pages now, or ENOSPC now, not SIGBUS
        pages = mmap.mmap(shm.fd, size)  # MAP_SHARED: both processes see the same pages
    except OSError as exc:
        posix_ipc.unlink_shared_memory(name)
        error = SizeNotSupportedError if exc.errno == errno.ENOSPC else ChannelError
        raise error(channel, f"{size} bytes in /dev/shm: {exc.strerror}") from exc
    finally:
        shm.close_fd()  # the mapping holds the pages: the descriptor is not needed
    view = memoryview(pages)
    handles.on_release(pages.close)  # munmap, after the views are released
    handles.on_release(view.release)
    return view


class _ShmEnd(PayloadEnd):
    """One side: views of the shared mapping, and a semaphore pair for the turns."""

    def __init__(self, view: memoryview, turns: PosixSemEnd, channel: str) -> None:
        self._channel = channel
        self._turns = turns
        self._length, self._data = split(view)  # views of the shared pages: no copies

    def send(self, data: memoryview) -> None:
        n = len(data)
        if n > len(self._data):
            raise SizeNotSupportedError(self._channel, f"{n} bytes > buffer of {len(self._data)}")
        self._data[:n] = data  # memcpy into the shared pages: no system call
        self._length[0] = n
        self._turns.post()  # the buffer is the peer's now

    def recv_into(self, buf: memoryview) -> int:
        self._turns.wait()  # the peer has written and handed the buffer over
        n = self._length[0]
        buf[:n] = self._data[:n]  # memcpy out into the caller's buffer
        return n

    def _close(self) -> None:
        self._length.release()  # views first: the mapping cannot close under them
        self._data.release()
        self._turns.close()  # the last end to close unmaps everything


class PosixShmChannel(Channel):
    name = "posix-shm"
    summary = "POSIX shared memory (mmap) + two POSIX semaphores for the handoff; 2 user copies"
    payload = True
    turns = True  # one buffer, strictly in turn

    _shm_name: str | None = None  # class defaults: close() is safe after a failed __init__
    _pair: SemaphorePair | None = None

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._handles = LocalHandles()
        name = object_name(self.name, posix=True)
        try:
            self._view = map_new_segment(self.name, name, buffer_size(max_size), self._handles)
            self._shm_name = name
            self._pair = SemaphorePair(self.name, name, self._handles)
        except ChannelError:
            self.close()
            raise

    def open(self, role: Role) -> PayloadEnd:
        assert self._pair is not None, "open() after a failed setup"
        return _ShmEnd(self._view, self._pair.end(role), self.name)

    def _remove(self) -> None:
        if self._shm_name is not None:
            with contextlib.suppress(posix_ipc.ExistentialError):  # unlinked already
                posix_ipc.unlink_shared_memory(self._shm_name)  # /dev/shm/NAME goes now
            self._shm_name = None
        if self._pair is not None:
            self._pair.unlink()
        self._handles.channel_closed()  # unmaps now, or when the last end closes
