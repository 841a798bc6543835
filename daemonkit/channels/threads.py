"""``th-*``: thread primitives of one process, the baseline the kernel channels are held to.

Two threads of one process share memory, so these channels need no kernel object: nothing to
name, nothing to unlink, no system call on the data path. Kernel path: a thread that must
wait blocks on a futex (``futex(2)`` ``FUTEX_WAIT``) inside a CPython lock, and the other
thread's release wakes it (``FUTEX_WAKE``); a waiting thread costs two context switches per
wake-up, like the kernel channels, but nothing is copied through the kernel. Both threads
also take turns on the GIL.

* ``th-condition``, ``th-event``, ``th-semaphore``: notification only (``payload = False``).
  CPython builds ``Condition``, ``Event`` and ``Semaphore`` all from ``_thread.lock``, so
  they differ in the bookkeeping around the same futex, not in the kernel mechanism.
* ``th-queue`` (``queue.Queue``, a deque under a ``Condition``) and ``th-simplequeue``
  (``queue.SimpleQueue``, in C, one lock): payload channels that pass a *reference*. The
  message is not copied by ``send``: the queue holds a ``memoryview`` of the sender's
  buffer. ``recv_into`` then copies the bytes into the receiver's buffer (one ``memcpy``,
  in user space) because the caller must end up owning them; that copy is the only one.
  The sender must leave its buffer alone until the receiver has taken the message, which
  ping-pong guarantees: the echo comes back only after the copy is done.

Lifetime: plain Python objects, gone with the channel; ``close()`` has nothing to remove.
Thread peers only (``peer_kinds = THREAD_ONLY``): after ``fork`` the child would hold a copy
of the objects that no other process can see.

See also: futex(2), futex(7), pthreads(7); the ``threading`` and ``queue`` modules.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from daemonkit.channels.base import THREAD_ONLY, Channel, NotifyEnd, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError

__all__ = [
    "ConditionChannel",
    "EventChannel",
    "QueueChannel",
    "SemaphoreChannel",
    "SimpleQueueChannel",
]

Give = Callable[[], object]  # post: leave a token for the waiter
Take = Callable[[], object]  # wait: block until a token is there, and take it
Put = Callable[[memoryview], None]
Get = Callable[[], memoryview]
D = TypeVar("D")  # what one direction is made of: a (give, take) pair or a queue


class _TokenEnd(NotifyEnd):
    """Post gives the peer a token; wait takes one of ours."""

    def __init__(self, give: Give, take: Take) -> None:
        self._give = give
        self._take = take

    def post(self) -> None:
        self._give()

    def wait(self) -> None:
        self._take()

    def _close(self) -> None:
        pass  # nothing held


class _QueueEnd(PayloadEnd):
    """Puts references on the peer's queue, copies what it gets into the caller's buffer."""

    def __init__(self, put: Put, get: Get) -> None:
        self._put = put
        self._get = get

    def send(self, data: memoryview) -> None:
        self._put(data)  # a reference: no byte is copied here

    def recv_into(self, buf: memoryview) -> int:
        data = self._get()
        n = len(data)
        buf[:n] = data  # the one copy: memcpy from the sender's buffer into ours
        return n

    def _close(self) -> None:
        pass


class _Mailbox:
    """A token count guarded by a condition variable: the textbook monitor."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._tokens = 0

    def give(self) -> None:
        with self._cond:
            self._tokens += 1
            self._cond.notify()  # wakes the one waiter, which then retakes the lock

    def take(self) -> None:
        with self._cond:
            while not self._tokens:  # loop: a wake-up is a hint, the count is the truth
                self._cond.wait()
            self._tokens -= 1


def _event_direction() -> tuple[Give, Take]:
    event = threading.Event()

    def take() -> None:
        event.wait()
        event.clear()  # safe: the peer sets it again only after our next post

    return event.set, take


class _ThreadChannel(Channel, Generic[D]):
    """Threads only; one object per direction, made by the subclass's ``_direction``."""

    peer_kinds = THREAD_ONLY
    _direction: Callable[[], D]

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        if peer not in self.peer_kinds:
            raise ChannelError(self.name, "thread peers only: a forked process shares nothing")
        self._to_server = type(self)._direction()
        self._to_client = type(self)._direction()

    def _sides(self, role: Role) -> tuple[D, D]:
        """(mine, theirs): an end takes from its own direction and gives to the other."""
        if role == "client":
            return self._to_client, self._to_server
        return self._to_server, self._to_client

    def _remove(self) -> None:
        pass  # plain objects: the garbage collector takes them


class _NotifyThreadChannel(_ThreadChannel[tuple[Give, Take]]):
    payload = False

    def open(self, role: Role) -> NotifyEnd:
        mine, theirs = self._sides(role)
        return _TokenEnd(give=theirs[0], take=mine[1])


class _QueueThreadChannel(
    _ThreadChannel["queue.Queue[memoryview] | queue.SimpleQueue[memoryview]"]
):
    payload = True

    def open(self, role: Role) -> PayloadEnd:
        mine, theirs = self._sides(role)
        return _QueueEnd(put=theirs.put, get=mine.get)


class ConditionChannel(_NotifyThreadChannel):
    name = "th-condition"
    summary = "threading.Condition and a token count, one each way; threads only, no payload"

    @staticmethod
    def _direction() -> tuple[Give, Take]:
        box = _Mailbox()
        return box.give, box.take


class EventChannel(_NotifyThreadChannel):
    name = "th-event"
    summary = "threading.Event, one each way (set / wait / clear); threads only, no payload"
    _direction = staticmethod(_event_direction)


class SemaphoreChannel(_NotifyThreadChannel):
    name = "th-semaphore"
    summary = "threading.Semaphore(0), one each way (release / acquire); threads only, no payload"

    @staticmethod
    def _direction() -> tuple[Give, Take]:
        sem = threading.Semaphore(0)
        return sem.release, sem.acquire


class QueueChannel(_QueueThreadChannel):
    name = "th-queue"
    summary = "queue.Queue, one each way; passes a reference, the receiver copies; threads only"
    _direction = queue.Queue


class SimpleQueueChannel(_QueueThreadChannel):
    name = "th-simplequeue"
    summary = "queue.SimpleQueue, one each way; a reference, the receiver copies; threads only"
    _direction = queue.SimpleQueue
