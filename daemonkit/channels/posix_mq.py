"""``posix-mq``: two POSIX message queues, one per direction.

Kernel path: ``mq_open(3)`` creates the queue in the mqueue filesystem (``/dev/mqueue/NAME``
when mounted) and returns a descriptor; a forked peer inherits it. ``mq_send(3)`` copies the
message into kernel memory (copy 1) and wakes a receiver; ``mq_receive(3)`` copies it out
(copy 2) into a ``bytes`` of the queue's full message size that posix_ipc allocates for every
receive, and ``recv_into`` copies it into the caller's buffer (copy 3): the binding has no
receive-into. Message boundaries are kept (no framing), a zero-length message included.

Facts about the limits (mq_overview(7)):

* ``fs.mqueue.msgsize_max`` (/proc/sys/fs/mqueue/msgsize_max) caps a queue's message size;
  ``mq_open`` fails with ``EINVAL`` above it. A process with CAP_SYS_RESOURCE could go past it;
  this channel keeps to it, so a size works or fails the same for every user. Sizes above it
  raise :class:`SizeNotSupportedError`, which says how to raise it
  (``sysctl fs.mqueue.msgsize_max=BYTES``); the channel never changes system settings itself.
* Each queue is created with room for one message (``mq_maxmsg`` = 1): a round trip never has
  more in flight, and the kernel charges ``mq_maxmsg * mq_msgsize`` up front against the
  owner's RLIMIT_MSGQUEUE (819200 bytes by default, shared by all of a user's queues).

Lifetime: kernel-persistent. A queue and its messages stay until ``mq_unlink(3)`` or a reboot
(the memory goes once the last descriptor is closed too); the creator unlinks both in
``Channel.close()``, a forked peer never does. Names carry the creator's pid
(``/dk.PID.posix-mq.N``), so ``daemonkit cleanup`` finds the queues of a creator killed by
SIGKILL.

See also: mq_overview(7), mq_open(3), mq_send(3), mq_receive(3), mq_unlink(3).
"""

from __future__ import annotations

import contextlib

import posix_ipc

from daemonkit.channels._ipc import MODE, LocalHandles, ipc_error, posix_interrupted, read_limit
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError, SizeNotSupportedError
from daemonkit.runtime import object_name

__all__ = ["PosixMqChannel"]

_MSGSIZE_MAX = "/proc/sys/fs/mqueue/msgsize_max"


class _MqEnd(PayloadEnd):
    """Sends on one queue, receives from the other."""

    def __init__(
        self, ch: str, out: posix_ipc.MessageQueue, inq: posix_ipc.MessageQueue, h: LocalHandles
    ) -> None:
        self._channel = ch
        self._out = out
        self._in = inq
        self._handles = h
        h.end_opened()

    def send(self, data: memoryview) -> None:
        while True:
            try:
                self._out.send(data)  # mq_send: copied into the kernel; blocks while full
                return
            except posix_ipc.Error as exc:
                posix_interrupted(exc, self._channel, "mq_send")
            except ValueError as exc:  # longer than the queue's mq_msgsize
                raise SizeNotSupportedError(self._channel, f"mq_send: {exc}") from exc

    def recv_into(self, buf: memoryview) -> int:
        while True:
            try:
                message, _ = self._in.receive()  # mq_receive: sleeps while the queue is empty
                break
            except posix_ipc.Error as exc:
                posix_interrupted(exc, self._channel, "mq_receive")
        n = len(message)
        buf[:n] = message  # copy into the caller's buffer
        return n

    def _close(self) -> None:
        self._handles.end_closed()  # the last end to close closes the descriptors


class PosixMqChannel(Channel):
    name = "posix-mq"
    summary = "two POSIX message queues, one per direction (mq_overview(7))"
    payload = True

    _names: tuple[str, ...] = ()  # class default: close() is safe after a failed __init__

    @classmethod
    def max_message_size(cls) -> int | None:
        return read_limit(_MSGSIZE_MAX)

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._handles = LocalHandles()
        if max_size > (limit := read_limit(_MSGSIZE_MAX)):
            raise SizeNotSupportedError(
                self.name,
                f"{max_size} bytes > fs.mqueue.msgsize_max = {limit} bytes per message"
                f" (raise it: sysctl fs.mqueue.msgsize_max={max_size})",
            )
        base = object_name(self.name, posix=True)
        queues: list[posix_ipc.MessageQueue] = []
        try:
            for direction in ("to-server", "to-client"):
                queues.append(self._new_queue(f"{base}.{direction}", max(max_size, 1)))
        except ChannelError:
            self.close()
            raise
        self._to_server, self._to_client = queues

    def _new_queue(self, name: str, msgsize: int) -> posix_ipc.MessageQueue:
        try:
            # mq_open(O_CREAT|O_EXCL|O_RDWR, 0600, {mq_maxmsg=1, mq_msgsize}); msgsize >= 1
            queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, MODE, 1, msgsize)
        except (posix_ipc.Error, OSError, ValueError) as exc:
            raise ipc_error(exc, self.name, f"mq_open {name}") from exc
        self._names += (name,)
        self._handles.on_release(queue.close)  # close(2) the descriptor in this process
        return queue

    def open(self, role: Role) -> PayloadEnd:
        if role == "client":
            return _MqEnd(self.name, self._to_server, self._to_client, self._handles)
        return _MqEnd(self.name, self._to_client, self._to_server, self._handles)

    def _remove(self) -> None:
        names, self._names = self._names, ()
        for name in names:
            with contextlib.suppress(posix_ipc.ExistentialError):  # unlinked already
                posix_ipc.unlink_message_queue(name)  # /dev/mqueue/NAME goes now
        self._handles.channel_closed()  # closes now, or when the last end closes
