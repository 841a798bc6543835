"""``sysv-shm``: a System V shared memory segment, handed back and forth by one semaphore.

Kernel path: ``shmget(2)`` makes the segment and ``shmat(2)`` maps it into the creator; a forked
peer inherits the attachment. The bytes never pass through a system call: ``send`` copies the
message into the segment (copy 1, a ``memcpy`` in user space) and writes its length in the
length word (:mod:`daemonkit.channels.shm_layout`); ``recv_into`` copies it out into the
caller's buffer (copy 2). The kernel only runs the handoff, ``semop(2)`` on one semaphore (see
below), which also orders the memory accesses: a system call is a full barrier. Shared memory
carries the bytes, the semaphore carries the "your turn": neither does the other's job.

Facts about the one-semaphore handoff (a System V feature POSIX semaphores lack):

* ``semop`` may add any amount, and ``sem_op = 0`` waits until the value is *zero*. So one
  semaphore counts the steps of a round trip: 0 idle, 2 request written, 1 taken by the
  server, 0 reply written.
* The client writes, adds 2 (waking the server), then waits for zero. The server waits to
  take 1 (2 -> 1), reads the request, writes the reply, takes 1 more (1 -> 0, never blocks):
  reaching zero wakes the client. The server cannot take the client's 2 twice, and the client
  cannot wake before the reply is written.
* So there is one buffer, used strictly in turn: the client owns it from 0 until it adds 2,
  the server from then until it reaches 0. A send must be followed by a receive.

Lifetime: kernel-persistent. The segment and the semaphore set outlive their processes until
``IPC_RMID`` or a reboot; the creator removes both in ``Channel.close()``, a forked peer never
does. After ``IPC_RMID`` a segment still attached somewhere lives on, keyless, until its last
detach. The keys carry the creator's pid (:func:`daemonkit.runtime.sysv_key`), so
``daemonkit cleanup`` finds what a creator killed by SIGKILL left.

See also: sysvipc(7), shmget(2), shmat(2), shmctl(2), semop(2).
"""

from __future__ import annotations

import sysv_ipc

from daemonkit.channels._ipc import (
    MODE,
    LocalHandles,
    SysvObject,
    create_sysv,
    ipc_error,
    read_limit,
    sysv_interrupted,
)
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.channels.shm_layout import LENGTH_SIZE, buffer_size, split
from daemonkit.errors import ChannelError, SizeNotSupportedError

__all__ = ["SysvShmChannel"]


class _ShmEnd(PayloadEnd):
    """One side of the handoff; both sides share the segment and the semaphore."""

    def __init__(self, ch: SysvShmChannel, role: Role) -> None:
        self._channel = ch.name
        self._client = role == "client"
        self._length, self._data = split(ch._view)  # views of the segment: no copies
        self._sem = ch._sem
        self._handles = ch._handles
        self._handles.end_opened()

    def send(self, data: memoryview) -> None:
        n = len(data)
        if n > len(self._data):
            raise SizeNotSupportedError(self._channel, f"{n} bytes > segment of {len(self._data)}")
        self._data[:n] = data  # memcpy into the segment: the peer sees it, no system call
        self._length[0] = n
        try:
            if self._client:
                self._sem.release(2)  # semop +2: request ready, the server wakes
            else:
                self._sem.acquire(delta=1)  # semop -1, 1 -> 0: zero wakes the client
        except sysv_ipc.Error as exc:
            raise ipc_error(exc, self._channel, "semop") from exc

    def recv_into(self, buf: memoryview) -> int:
        while True:
            try:
                if self._client:
                    self._sem.Z()  # semop 0: sleep until the server has written the reply
                else:
                    self._sem.acquire(delta=1)  # semop -1: sleep until a request (2 -> 1)
                break
            except sysv_ipc.Error as exc:
                sysv_interrupted(exc, self._channel, "semop")
        n = self._length[0]
        buf[:n] = self._data[:n]  # memcpy out of the segment into the caller's buffer
        return n

    def _close(self) -> None:
        self._length.release()  # views first: detaching under them would crash
        self._data.release()
        self._handles.end_closed()  # the last end to close detaches


class SysvShmChannel(Channel):
    name = "sysv-shm"
    summary = "System V shared memory + one System V semaphore for the handoff; 2 user copies"
    payload = True
    turns = True  # one buffer, strictly in turn

    # Class defaults: close() is safe after __init__ failed half-way.
    _shm: SysvObject[sysv_ipc.SharedMemory] | None = None
    _sem_set: SysvObject[sysv_ipc.Semaphore] | None = None

    @classmethod
    def max_message_size(cls) -> int | None:
        return read_limit("/proc/sys/kernel/shmmax") - LENGTH_SIZE  # shmget's EINVAL limit

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._handles = LocalHandles()
        if max_size > (limit := self.max_message_size() or 0):
            raise SizeNotSupportedError(
                self.name, f"{max_size} bytes > kernel.shmmax - {LENGTH_SIZE} = {limit}"
            )
        try:
            # shmget(key, 8 + size, IPC_CREAT|IPC_EXCL|0600) + shmat: zero-filled pages
            self._shm = create_sysv(self.name, "shm", self._new_segment)
            self._view = memoryview(self._shm.obj)  # the attached segment, as a buffer
            self._handles.on_release(self._shm.obj.detach)  # shmdt, after the views go
            self._handles.on_release(self._view.release)
            # semget(key, 1, IPC_CREAT|IPC_EXCL|0600), value 0: idle
            self._sem_set = create_sysv(self.name, "sem", self._new_semaphore)
            self._sem = self._sem_set.obj
        except ChannelError:
            self.close()
            raise

    def _new_segment(self, key: int) -> sysv_ipc.SharedMemory:
        return sysv_ipc.SharedMemory(key, sysv_ipc.IPC_CREX, MODE, buffer_size(self.max_size))

    @staticmethod
    def _new_semaphore(key: int) -> sysv_ipc.Semaphore:
        return sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, MODE, 0)

    def open(self, role: Role) -> PayloadEnd:
        return _ShmEnd(self, role)

    def _remove(self) -> None:
        if self._sem_set is not None:
            self._sem_set.remove()  # IPC_RMID: a peer still waiting wakes with EIDRM
        if self._shm is not None:
            self._shm.remove()  # IPC_RMID: keyless now, freed at the last detach
        self._handles.channel_closed()  # detaches now, or when the last end closes
