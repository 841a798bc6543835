"""``sysv-mq``: one System V message queue, with a message type per direction.

Kernel path: ``msgsnd(2)`` copies the message into kernel memory (a chain of ``msg_msg``
blocks) and wakes a receiver; ``msgrcv(2)`` with ``msgtyp`` = 1 (to the server) or 2 (to the
client) takes the first message *of that type* and copies it out, so one queue carries both
directions without either side reading its own messages. Message boundaries are kept: no
framing. Copies per message: sysv_ipc builds a ``struct msgbuf`` with a ``memcpy`` (1), the
kernel copies it in (2) and out into a buffer sysv_ipc allocates for every receive (3),
sysv_ipc turns that into a ``bytes`` (4), and ``recv_into`` copies it into the caller's buffer
(5): the binding has no receive-into.

Facts about the limits (sysvipc(7), proc(5)):

* ``kernel.msgmax`` (/proc/sys/kernel/msgmax) caps one message, for everyone, root included:
  a bigger ``msgsnd`` fails with ``EINVAL``. Raise it with ``sysctl kernel.msgmax=BYTES``.
* ``kernel.msgmnb`` is the default ``msg_qbytes`` of a new queue: the bytes it may hold. Only
  a process with CAP_SYS_RESOURCE may set one queue's ``msg_qbytes`` above it (``IPC_SET``),
  which this channel does when a message would not fit; otherwise the size is refused.
* A round trip has one message in the queue at a time, so ``msg_qbytes`` >= the message size
  is enough.

Lifetime: kernel-persistent. The queue, and any message left in it, outlives its processes
until ``msgctl(IPC_RMID)`` or a reboot; the creator removes it in ``Channel.close()``, a forked
peer never does. Its key carries the creator's pid (:func:`daemonkit.runtime.sysv_key`), so
``daemonkit cleanup`` finds the queue of a creator killed by SIGKILL.

See also: sysvipc(7), msgget(2), msgsnd(2), msgrcv(2), msgctl(2).
"""

from __future__ import annotations

import sysv_ipc

from daemonkit.channels._ipc import (
    MODE,
    SysvObject,
    create_sysv,
    has_cap_sys_resource,
    read_limit,
    sysv_interrupted,
)
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError, SizeNotSupportedError

__all__ = ["SysvMqChannel"]

_TO_SERVER, _TO_CLIENT = 1, 2  # message types (msgtyp): must be > 0
_MSGMAX = "/proc/sys/kernel/msgmax"
_MSGMNB = "/proc/sys/kernel/msgmnb"


class _MqEnd(PayloadEnd):
    """Sends messages of one type, receives messages of the other."""

    def __init__(self, channel: str, queue: sysv_ipc.MessageQueue, role: Role) -> None:
        self._channel = channel
        self._queue = queue
        self._send_type, self._recv_type = (
            (_TO_SERVER, _TO_CLIENT) if role == "client" else (_TO_CLIENT, _TO_SERVER)
        )

    def send(self, data: memoryview) -> None:
        while True:
            try:
                # msgsnd: copied into the kernel; blocks only while the queue is full
                self._queue.send(data, True, self._send_type)
                return
            except sysv_ipc.Error as exc:
                sysv_interrupted(exc, self._channel, "msgsnd")
            except ValueError as exc:  # longer than the queue's max_message_size
                raise SizeNotSupportedError(self._channel, str(exc)) from exc

    def recv_into(self, buf: memoryview) -> int:
        while True:
            try:
                # msgrcv(msgtyp): sleeps until a message of our type arrives
                message, _ = self._queue.receive(True, self._recv_type)
                break
            except sysv_ipc.Error as exc:
                sysv_interrupted(exc, self._channel, "msgrcv")
        n = len(message)
        buf[:n] = message  # copy into the caller's buffer
        return n

    def _close(self) -> None:
        pass  # a queue has no per-process handle: nothing to let go


class SysvMqChannel(Channel):
    name = "sysv-mq"
    summary = "one System V message queue, a message type per direction (msgsnd(2)/msgrcv(2))"
    payload = True

    _queue: SysvObject[sysv_ipc.MessageQueue] | None = None  # close() is safe after a failure

    @classmethod
    def max_message_size(cls) -> int | None:
        msgmax = read_limit(_MSGMAX)
        if has_cap_sys_resource():  # may raise msg_qbytes past msgmnb for one queue
            return msgmax
        return min(msgmax, read_limit(_MSGMNB))

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._check_size(max_size)
        # msgget(key, IPC_CREAT|IPC_EXCL|0600); sysv_ipc's receive buffer = max_size bytes
        self._queue = create_sysv(self.name, "msg", self._new_queue)
        queue = self._queue.obj
        if queue.max_size < max_size:  # msg_qbytes, from kernel.msgmnb
            try:
                queue.max_size = max_size  # msgctl(IPC_SET): needs CAP_SYS_RESOURCE
            except sysv_ipc.Error as exc:
                self.close()
                raise ChannelError(self.name, f"msgctl(IPC_SET msg_qbytes): {exc}") from exc

    def _new_queue(self, key: int) -> sysv_ipc.MessageQueue:
        return sysv_ipc.MessageQueue(key, sysv_ipc.IPC_CREX, MODE, max(self.max_size, 1))

    def _check_size(self, size: int) -> None:
        msgmax, msgmnb = read_limit(_MSGMAX), read_limit(_MSGMNB)
        if size > msgmax:
            raise SizeNotSupportedError(
                self.name,
                f"{size} bytes > kernel.msgmax = {msgmax} bytes per message"
                f" (raise it: sysctl kernel.msgmax={size})",
            )
        if size > msgmnb and not has_cap_sys_resource():
            raise SizeNotSupportedError(
                self.name,
                f"{size} bytes > kernel.msgmnb = {msgmnb} bytes per queue, and raising one"
                f" queue's limit needs CAP_SYS_RESOURCE (or: sysctl kernel.msgmnb={size})",
            )

    def open(self, role: Role) -> PayloadEnd:
        assert self._queue is not None, "open() after close()"
        return _MqEnd(self.name, self._queue.obj, role)

    def _remove(self) -> None:
        if self._queue is not None:
            self._queue.remove()  # msgctl(IPC_RMID): messages freed, a waiter gets EIDRM
