"""The lat_ctx token ring: the pipe channel and a peer, each receive reading a working set.

The ring is :class:`daemonkit.channels.pipe.PipeChannel` driven by
:class:`daemonkit.bench.peer.Peer`; its ends are wrapped so that every receive also reads
the receiving side's private working set of W bytes (``bytes.find`` of a byte that is not
there: ``memchr`` over all W bytes, at C speed) or, for a page-strided working set, one byte of
each of its pages (``bytes(view[::4096])``: one cache line per page, so every page costs a
TLB lookup and little cache). Beside it, the two no-switch baselines: the
same pipe calls made by one thread, and one read of a working set that is already hot.

Kernel path: per hop, ``writev(2)`` into a pipe, the reader woken from ``read(2)``, and,
with both sides pinned to one CPU (``sched_setaffinity(2)``), a context switch; then W bytes
through the caches and the TLB.

Lifetime: each working set is allocated *after* the fork, in the side that reads it, and
written once (``b"\\x02" * W`` is a memset): otherwise parent and child would read the same
copy-on-write frames, or the kernel's shared zero page. Pipes, peers and affinity are released
when the ``ExitStack`` / context managers that hold them close.

See also: pipe(7), sched_setaffinity(2), getrusage(2), lmbench lat_ctx(8).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from array import array
from collections.abc import Callable, Iterator

from daemonkit.bench.peer import CtxSwitches, Peer, payload_roundtrips
from daemonkit.channels import channel_class
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role

__all__ = ["Ring", "hot_read", "pinned", "reader", "rounds_per_batch", "solo"]


def reader(size: int, stride: int) -> tuple[bytes, Callable[[], object]]:
    """A private working set of *size* bytes and the call that reads it once.

    ``stride == 1``: every byte (``memchr``). ``stride == PAGE``: one byte per page, so the
    read touches as many pages (TLB entries) as the set has, but one cache line of each.
    """
    ws = b"\x02" * size  # memset: real private frames, not the shared zero page
    if stride == 1:
        find = ws.find
        return ws, lambda: find(b"\x01")  # memchr over all W bytes
    view = memoryview(ws)[::stride]
    return ws, lambda: bytes(view)  # one load per page, at C speed


class _WorkingSetEnd(PayloadEnd):
    """A pipe end that reads this side's private working set after every receive."""

    def __init__(self, inner: PayloadEnd, size: int, stride: int) -> None:
        self._inner = inner
        self._ws, self._read = reader(size, stride)

    def send(self, data: memoryview) -> None:
        self._inner.send(data)

    def recv_into(self, buf: memoryview) -> int:
        n = self._inner.recv_into(buf)
        self._read()  # the working set through the caches and the TLB
        return n

    def _close(self) -> None:
        self._inner.close()
        self._ws = b""


class _WorkingSetChannel(Channel):
    name = "pipe"
    summary = "the pipe channel, with a working-set read at every receive"
    payload = True

    def __init__(self, peer: PeerKind, ws: int, stride: int = 1) -> None:
        super().__init__(peer, 0)
        self._ws = ws
        self._stride = stride
        self._inner = channel_class("pipe")(peer, 0)

    def open(self, role: Role) -> PayloadEnd:
        end = self._inner.open(role)
        assert isinstance(end, PayloadEnd)
        return _WorkingSetEnd(
            end, self._ws, self._stride
        )  # allocated here: in the side that reads it

    def _remove(self) -> None:
        self._inner.close()


_MSG = memoryview(b"")  # the token: a zero-byte message (its 4-byte frame header)


class Ring:
    """The client end in this thread and a peer (thread or forked process) on *cpu*."""

    def __init__(
        self, stack: contextlib.ExitStack, kind: PeerKind, ws: int, cpu: int | None, stride: int
    ) -> None:
        self.kind = kind
        self.channel = stack.enter_context(_WorkingSetChannel(kind, ws, stride))
        self.peer = Peer(self.channel, kind, 0, cpu)
        self.peer.start()
        stack.callback(self.peer.stop)
        end = stack.enter_context(self.channel.open("client"))
        assert isinstance(end, PayloadEnd)
        self.end = end
        with self.peer.watch(timeout=30):
            self.peer.report()  # ready
        self.rbuf = memoryview(bytearray(1))

    def batch(self, n: int) -> dict[str, float]:
        samples, got = array("q", [0] * n), array("q", [0] * n)
        with self.peer.watch(timeout=60):
            before = CtxSwitches.of_this_thread()
            self.peer.command(n)
            payload_roundtrips(self.end, _MSG, self.rbuf, samples, got)
            mine = CtxSwitches.of_this_thread() - before
            theirs = self.peer.report()
        return {
            "rtt_ns": statistics.median(samples),
            "vcs": (mine.voluntary + theirs["voluntary"]) / n,
            "ivcs": (mine.involuntary + theirs["involuntary"]) / n,
        }


def solo(ws: int, n: int, stride: int = 1) -> float:
    """The same sends and receives all in this thread (no switch), reading both working sets."""
    with (
        _WorkingSetChannel("thread", ws, stride) as ch,
        ch.open("client") as c,
        ch.open("server") as s,
    ):
        assert isinstance(c, PayloadEnd) and isinstance(s, PayloadEnd)
        buf = memoryview(bytearray(1))
        clock = time.perf_counter_ns
        samples = array("q", [0] * n)
        for i in range(n):
            t0 = clock()
            c.send(_MSG)
            s.recv_into(buf)
            s.send(_MSG)
            c.recv_into(buf)
            samples[i] = clock() - t0
        return float(statistics.median(samples))


def hot_read(ws: int, n: int, stride: int = 1) -> float:
    """One read of a working set this thread just read: cached, as far as W fits."""
    _data, read = reader(ws, stride)
    clock = time.perf_counter_ns
    read()  # warm it
    samples = array("q", [0] * n)
    for i in range(n):
        t0 = clock()
        read()
        samples[i] = clock() - t0
    return float(statistics.median(samples))


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin this thread to *cpu* (None: leave it free) and restore its mask afterwards."""
    old = os.sched_getaffinity(0)
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # peers started now inherit it, then pin themselves
        yield
    finally:
        os.sched_setaffinity(0, old)


def rounds_per_batch(ring: Ring, batch_s: float) -> int:
    """Round trips per batch so that one batch takes about *batch_s* seconds."""
    t0 = time.perf_counter()
    ring.batch(20)
    per = (time.perf_counter() - t0) / 20
    return max(20, min(20000, int(batch_s / per)))
