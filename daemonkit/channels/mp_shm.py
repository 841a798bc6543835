"""``mp-shm``: ``multiprocessing.shared_memory`` handed back and forth by two
``multiprocessing.Semaphore``\\ s.

Kernel path: ``SharedMemory(create=True)`` is ``shm_open(3)`` of ``/dev/shm/NAME`` (a tmpfs
file, mode 0600), ``ftruncate(2)`` and ``mmap(2)``; a forked peer inherits the mapping. As in
``posix-shm``, the bytes never pass through a system call: ``send`` copies the message into
the mapping (copy 1) and stores its length (:mod:`daemonkit.channels.shm_layout`), ``recv_into``
copies it out (copy 2). The turns are two ``multiprocessing.Semaphore(0)``: POSIX semaphores in
shared memory (``sem_open(3)``), futex-based, so a release enters the kernel only to wake a
sleeping waiter; their atomic operations order the memory accesses, so what was written before a
release is seen after the matching acquire. Beside ``posix-shm`` (posix_ipc), this is the same
mechanism reached through the standard library.

Facts about the resource tracker (Python 3.8 to 3.12):

* ``SharedMemory`` registers every segment it creates *or attaches* with
  ``multiprocessing.resource_tracker``, which starts a helper process on first use and, when
  this process exits, unlinks what is still registered and prints a "leaked shared_memory"
  warning. That is someone else's cleanup acting behind our back: a segment must go when its
  owner says so (``Channel.close()``), and what a SIGKILLed runner leaves is for
  ``daemonkit cleanup``, which finds it by its name (``dk.PID.mp-shm.N``).
* So the segment is created with ``track=False`` where Python has it (3.13), and otherwise with
  the registration turned into a no-op for the duration of the constructor; it is unlinked
  with ``shm_unlink(3)`` directly, since ``SharedMemory.unlink()`` would ask the tracker too.
* The semaphores come from the ``fork`` context: it unlinks their names at once
  (``sem_unlink(3)`` right after ``sem_open``), so they leave nothing in ``/dev/shm`` and are
  never registered either.

Lifetime: kernel-persistent until ``shm_unlink``: ``/dev/shm/dk.PID.mp-shm.N`` stays until the
creator's ``Channel.close()`` (or ``daemonkit cleanup`` after a crash); the memory goes with
the last mapping. The semaphores live as long as the mapping that holds them.

See also: shm_overview(7), shm_open(3), mmap(2), sem_overview(7);
``multiprocessing.shared_memory`` in the Python docs.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Semaphore

import posix_ipc

from daemonkit.channels._ipc import LocalHandles
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.channels.shm_layout import buffer_size, split
from daemonkit.errors import ChannelError, SizeNotSupportedError
from daemonkit.runtime import object_name

__all__ = ["MpShmChannel"]

_FORK = multiprocessing.get_context("fork")


def _create_untracked(name: str, size: int) -> SharedMemory:
    """``SharedMemory(name, create=True, size)`` kept away from the resource tracker."""
    if sys.version_info >= (3, 13):
        return SharedMemory(name, create=True, size=size, track=False)
    register = resource_tracker.register
    resource_tracker.register = lambda name, rtype: None  # see "Facts about the tracker"
    try:
        return SharedMemory(name, create=True, size=size)
    finally:
        resource_tracker.register = register


class _MpShmEnd(PayloadEnd):
    """Views of the shared buffer; gives the turn with one semaphore, waits on the other."""

    def __init__(
        self, channel: str, view: memoryview, mine: Semaphore, theirs: Semaphore,
        handles: LocalHandles,
    ) -> None:  # fmt: skip
        self._channel = channel
        self._length, self._data = split(view)  # views of the shared pages: no copies
        self._wait = mine.acquire
        self._give = theirs.release
        self._handles = handles
        handles.end_opened()

    def send(self, data: memoryview) -> None:
        n = len(data)
        if n > len(self._data):
            raise SizeNotSupportedError(self._channel, f"{n} bytes > buffer of {len(self._data)}")
        self._data[:n] = data  # memcpy into the shared pages
        self._length[0] = n
        self._give()  # sem_post: the buffer is the peer's now

    def recv_into(self, buf: memoryview) -> int:
        self._wait()  # sem_wait: the peer has written and handed the buffer over
        n = self._length[0]
        buf[:n] = self._data[:n]
        return n

    def _close(self) -> None:
        self._length.release()
        self._data.release()
        self._handles.end_closed()  # the last one out unmaps


class MpShmChannel(Channel):
    name = "mp-shm"
    summary = "multiprocessing.shared_memory + two multiprocessing.Semaphores; 2 user copies"
    payload = True
    turns = True  # one buffer, strictly in turn

    _shm: SharedMemory | None = None  # class default: close() is safe after a failed __init__

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._handles = LocalHandles()
        name = object_name(self.name)  # SharedMemory adds the leading slash
        try:
            self._shm = _create_untracked(name, buffer_size(max_size))
        except FileExistsError as exc:
            raise ChannelError(self.name, f"shm_open {name}: {exc.strerror}") from exc
        except OSError as exc:
            raise SizeNotSupportedError(self.name, f"/dev/shm: {exc.strerror}") from exc
        shm = self._shm
        assert shm.buf is not None  # the mapping, made by the constructor
        self._view = memoryview(shm.buf)
        self._handles.on_release(shm.close)  # munmap, after the views are released
        self._handles.on_release(self._view.release)
        self._to_server: Semaphore = _FORK.Semaphore(0)
        self._to_client: Semaphore = _FORK.Semaphore(0)

    def open(self, role: Role) -> PayloadEnd:
        if role == "client":
            mine, theirs = self._to_client, self._to_server
        else:
            mine, theirs = self._to_server, self._to_client
        return _MpShmEnd(self.name, self._view, mine, theirs, self._handles)

    def _remove(self) -> None:
        if self._shm is not None:
            with contextlib.suppress(posix_ipc.ExistentialError):  # unlinked already
                posix_ipc.unlink_shared_memory("/" + self._shm.name)  # not the tracker's
        self._handles.channel_closed()  # unmaps now, or when the last end closes
