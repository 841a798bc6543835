"""One traced case: a ping-pong over one channel with the scheduler's events recorded around it.

Steps of :func:`capture` (each undone, in reverse, on every path out: success, a failing
channel, a dead peer, Ctrl-C):

1. pin this thread (the client) as the placement asks; create the channel's kernel objects;
2. start the bench's :class:`~daemonkit.bench.peer.Peer` (a forked process or a thread,
   pinned itself), open the client end, wait for the peer's "ready";
3. warm up, untraced: caches, the first page faults and the interpreter's specialisation
   are paid before anything is recorded;
4. start ``perf record`` (:class:`~daemonkit.trace.perf.SchedRecorder`), events off; note
   every thread of the processes involved (a ZeroMQ context has I/O threads of its own);
5. events on; one untimed round trip (the peer also wakes from its command pipe); then the
   bench's own timed loop (:func:`~daemonkit.bench.peer.payload_roundtrips` or
   :func:`~daemonkit.bench.peer.notify_roundtrips`) between two getrusage(2) readings and two
   timestamps (and the instant each round trip began: the timeline shows the round trips
   the client timed); events off; the peer reports its own getrusage counts;
6. decode the events; check every echo's length.

*Kernel path*: as ``daemonkit bench`` (sched_setaffinity(2), fork(2) or pthread_create(3),
getrusage(2) ``RUSAGE_THREAD``, the channel's calls), plus what perf does
(:mod:`daemonkit.trace.perf`).
*Lifetime*: every kernel object, the peer and perf live exactly as long as the case.
*See also*: sched_setaffinity(2), getrusage(2), perf-record(1).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field

from daemonkit.bench.peer import CtxSwitches, Peer, notify_roundtrips, payload_roundtrips
from daemonkit.channels.base import Channel, NotifyEnd, PayloadEnd, PeerKind
from daemonkit.errors import ChannelError
from daemonkit.machine import Placement
from daemonkit.trace.events import Event
from daemonkit.trace.perf import SchedRecorder

__all__ = ["Capture", "capture", "lock_regions"]

_TIMEOUT = 60.0  # s for the peer to get ready or to finish a traced batch


@dataclass
class Capture:
    """What one traced case produced: who is who, the client's own figures, the events."""

    channel: str
    peer: PeerKind
    cpu: str
    size: int
    client_tid: int
    peer_tid: int
    client_cpus: list[int]
    peer_cpus: list[int]
    round_trips: int
    start_ns: int  # CLOCK_MONOTONIC, first and last instant of the timed loop
    end_ns: int
    samples: list[int]  # ns per round trip, as the client timed them
    starts: list[int]  # CLOCK_MONOTONIC instant each timed round trip began (client's clock)
    client_rusage: CtxSwitches  # over the timed loop
    peer_rusage: CtxSwitches  # over the peer's batch: round_trips + 1 echoes
    threads: dict[int, str] = field(default_factory=dict)  # other threads of the two sides
    # Per side, the address ranges that tell which lock a futex word belongs to.
    regions: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    lost_events: int = 0


class _Loop:
    """The client's buffers and the bench's timed loop over them."""

    def __init__(self, end: PayloadEnd | NotifyEnd, size: int) -> None:
        self.end = end
        self.size = size if isinstance(end, PayloadEnd) else 0
        self.msg = memoryview(bytearray(os.urandom(self.size)))
        self.rbuf = memoryview(bytearray(max(self.size, 1)))

    def run(self, samples: array[int], starts: array[int] | None = None) -> None:
        got = array("q", bytes(8 * len(samples)))
        if isinstance(self.end, PayloadEnd):
            payload_roundtrips(self.end, self.msg, self.rbuf, samples, got, starts)
            if got.count(self.size) != len(got):
                raise ChannelError("trace", f"an echo was not {self.size} bytes long")
        else:
            notify_roundtrips(self.end, samples, starts)


def _threads_of(pid: int) -> dict[int, str]:
    """Every thread of *pid* with its name, from /proc/PID/task."""
    out: dict[int, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            comm = f"/proc/{pid}/task/{tid}/comm"
            with contextlib.suppress(OSError), open(comm, encoding="utf-8", errors="replace") as f:
                out[int(tid)] = f.read().strip()
    return out


def lock_regions(pid: int) -> list[tuple[int, int, str]]:
    """Where a futex word of *pid* may live, from /proc/PID/maps: ``interpreter`` (the data
    of libpython or of the python executable: the GIL is a static structure there) or
    ``shared`` (a file in /dev/shm or a System V segment: a lock shared between processes,
    such as a POSIX semaphore). Anything else (the heap) is neither."""
    exe = os.path.realpath(sys.executable)
    out = []
    with contextlib.suppress(OSError), open(f"/proc/{pid}/maps", encoding="utf-8") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            path = fields[5].strip() if len(fields) == 6 else ""
            name = os.path.basename(path)
            if name.startswith("libpython") or path == exe:
                kind = "interpreter"
            elif path.startswith("/dev/shm/") or path.startswith("/SYSV"):
                kind = "shared"
            else:
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            out.append((lo, hi, kind))
    return out


def _peer_tid(peer: Peer, channel: Channel) -> int:
    if peer.pid is not None:
        return peer.pid  # a forked peer: one thread, its tid is its pid
    for t in threading.enumerate():  # the bench names its peer thread after the channel
        if t.name == f"peer-{channel.name}" and t.native_id is not None:
            return t.native_id
    raise ChannelError(channel.name, "peer thread not found")


def capture(
    cls: type[Channel], kind: PeerKind, size: int, place: Placement, n: int, warmup: int
) -> Capture:
    """Run and record one case (see the module docstring); raises on any failure."""
    original = os.sched_getaffinity(0)
    with contextlib.ExitStack() as stack:
        stack.callback(os.sched_setaffinity, 0, original)
        if place.client_cpu is not None:  # step 1
            os.sched_setaffinity(0, {place.client_cpu})
        channel = stack.enter_context(cls(kind, size))
        peer = Peer(channel, kind, size, place.peer_cpu)  # step 2
        peer.start()
        stack.callback(peer.stop)
        with peer.watch(_TIMEOUT):
            end = stack.enter_context(channel.open("client"))
            ready = peer.report()
        assert isinstance(end, PayloadEnd | NotifyEnd)
        loop = _Loop(end, size)
        if warmup:  # step 3
            with peer.watch(_TIMEOUT):
                peer.command(warmup)
                loop.run(array("q", bytes(8 * warmup)))
                peer.report()

        me, peer_tid = threading.get_native_id(), _peer_tid(peer, channel)  # step 4
        threads = _threads_of(os.getpid())
        if peer.pid is not None:
            threads.update(_threads_of(peer.pid))
        for tid in (me, peer_tid):
            threads.pop(tid, None)
        cpus = None if place.client_cpu is None else [place.client_cpu, place.peer_cpu or 0]
        recorder = stack.enter_context(SchedRecorder(cpus, [me, peer_tid, *threads]))

        samples, starts = array("q", bytes(8 * n)), array("q", bytes(8 * n))
        one = array("q", bytes(8))
        recorder.enable()  # step 5
        with peer.watch(_TIMEOUT):
            peer.command(n + 1)
            loop.run(one)
            before = CtxSwitches.of_this_thread()
            start = time.perf_counter_ns()
            loop.run(samples, starts)
            stop = time.perf_counter_ns()
            mine = CtxSwitches.of_this_thread() - before
            counts = peer.report()
        recorder.disable()
        regions = {"client": lock_regions(os.getpid())}
        regions["peer"] = lock_regions(peer.pid) if peer.pid is not None else regions["client"]
        events = recorder.events()  # step 6
        return Capture(
            channel=channel.name,
            peer=kind,
            cpu=place.mode,
            size=loop.size,
            client_tid=me,
            peer_tid=peer_tid,
            client_cpus=sorted(os.sched_getaffinity(0)),
            peer_cpus=list(ready.get("cpu") or []),
            round_trips=n,
            start_ns=start,
            end_ns=stop,
            samples=list(samples),
            starts=list(starts),
            client_rusage=mine,
            peer_rusage=CtxSwitches(int(counts["voluntary"]), int(counts["involuntary"])),
            threads=threads,
            regions=regions,
            events=events,
            lost_events=recorder.lost,
        )
    raise AssertionError("unreachable")  # the with block returns or raises
