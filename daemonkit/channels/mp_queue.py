"""``mp-queue``: ``multiprocessing.Queue``, one each way: a feeder thread, pickling, a lock.

Kernel path of one message, as CPython's ``multiprocessing/queues.py`` does it:

1. ``put(obj)`` appends the object to an in-process ``deque`` under a ``threading.Condition``
   and notifies the queue's *feeder thread* (started by the first ``put``): a futex wake-up,
   a second thread of the sender's process.
2. The feeder thread pickles the object (here ``bytes``: one more copy, in user space), takes
   the queue's write lock (a ``multiprocessing.Lock``: a POSIX semaphore, futex-based, in
   shared memory) and writes a 4-byte length and the pickle into an ``os.pipe()``
   (``write(2)``, the kernel's copy in).
3. ``get()`` takes the queue's read lock (another POSIX semaphore), reads the length and the
   pickle with ``read(2)`` (the kernel's copy out) and unpickles it into a new ``bytes`` object;
   ``recv_into`` then copies it into the caller's buffer.

So a message costs two threads, two pickle copies, two semaphores and the pipe's two copies:
this is why ``mp-queue`` sits well above ``pipe``. ``send`` must hand ``put`` a ``bytes`` copy
of the message (a ``memoryview`` cannot be pickled), a new object per message.

Lifetime: process-persistent. With the ``fork`` start method (asked for explicitly here) the
locks' semaphores are unlinked as soon as they are made (``sem_unlink(3)`` at creation), so
nothing named exists and the resource tracker is never involved; the pipes go with their last
descriptor. A forked peer closes the pipe ends it does not use, so a dead peer is end-of-file.
The ends reach into the queue's pipe ends (``Queue._reader``, ``Queue._writer``), which
``multiprocessing`` does not expose: closing the other side's ends is what lets the kernel
report a dead peer instead of a reader blocked for ever.

See also: pipe(7), sem_overview(7), futex(7); ``multiprocessing.Queue`` and ``pickle`` in the
Python docs.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue

from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError, PeerDiedError

__all__ = ["MpQueueChannel"]

_FORK = multiprocessing.get_context("fork")  # semaphores unlinked at once: no resource tracker
_FLUSH_TIMEOUT = 2.0  # s for the feeder thread to write what is left and end


class _QueueEnd(PayloadEnd):
    """Puts a copy of each message on the peer's queue, gets the peer's from its own."""

    def __init__(self, channel: str, rx: Queue[bytes], tx: Queue[bytes]) -> None:
        # EPIPE in the feeder thread (the peer died) ends it quietly instead of printing a
        # traceback; the peer's death is reported by the next get() (end of file).
        tx._ignore_epipe = True  # type: ignore[attr-defined]
        self._channel = channel
        self._rx = rx
        self._tx = tx
        self._put = tx.put
        self._get = rx.get

    def send(self, data: memoryview) -> None:
        self._put(bytes(data))  # a bytes object: the feeder thread pickles it

    def recv_into(self, buf: memoryview) -> int:
        try:
            data = self._get()
        except (EOFError, OSError) as exc:  # read(2) of the queue's pipe: end of file
            raise PeerDiedError(self._channel, "peer closed its end (end of file)") from exc
        n = len(data)
        buf[:n] = data
        return n

    def _close(self) -> None:
        tx = self._tx
        tx.close()  # the feeder writes what is left, closes the queue's pipe ends and ends
        feeder = tx._thread  # type: ignore[attr-defined]
        if feeder is not None:
            feeder.join(_FLUSH_TIMEOUT)
        if feeder is None or not feeder.is_alive():
            # No feeder ever ran here, or it ended on EPIPE (a dead peer) without closing:
            # close the pipe ends now (Connection.close is idempotent).
            tx._reader.close()  # type: ignore[attr-defined]
            tx._writer.close()  # type: ignore[attr-defined]
        self._rx._reader.close()  # type: ignore[attr-defined]


class MpQueueChannel(Channel):
    name = "mp-queue"
    summary = "multiprocessing.Queue, one each way: feeder thread, pickle, semaphores, os.pipe"
    payload = True

    _to_client: Queue[bytes] | None = None  # class defaults: close() is safe after a failure
    _to_server: Queue[bytes] | None = None

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        try:
            self._to_client = _FORK.Queue()
            self._to_server = _FORK.Queue()
        except OSError as exc:
            self.close()
            raise ChannelError(self.name, f"multiprocessing.Queue: {exc.strerror}") from exc
        self._opened = False

    def open(self, role: Role) -> PayloadEnd:
        assert self._to_client is not None and self._to_server is not None
        rx, tx = (
            (self._to_client, self._to_server)
            if role == "client"
            else (self._to_server, self._to_client)
        )
        if self.peer == "process":
            # This process only reads rx and writes tx: close the other two pipe ends, so
            # that the peer's death is end-of-file here and EPIPE in our feeder.
            tx._reader.close()  # type: ignore[attr-defined]
            rx._writer.close()  # type: ignore[attr-defined]
        self._opened = True
        return _QueueEnd(self.name, rx, tx)

    def _remove(self) -> None:
        if self._opened:
            return  # the ends close the queues' pipes
        for q in (self._to_client, self._to_server):
            if q is not None:  # never used: no feeder thread, only the pipe to close
                q._reader.close()  # type: ignore[attr-defined]
                q._writer.close()  # type: ignore[attr-defined]
