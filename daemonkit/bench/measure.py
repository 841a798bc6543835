"""One case's measurement: warm-up, timed batches, echo checks, then statistics.

:func:`measure` is the same for every target (a local peer, the running daemon, a remote
``daemonkit serve``): it gets the client end of a channel and a :class:`Link`, the little it
may ask of the other end between batches, and never anything else.

Steps of :func:`measure`:

1. warm up (samples discarded), and estimate one round trip's time from it;
2. run timed batches, each of about a quarter of a second: tell the other end how many
   messages come (:meth:`Link.start`), run the timed loop of :mod:`daemonkit.bench.peer`,
   read both ends' context-switch counts, and verify the echoes: every echoed length (the
   loop stores them) and a checksum of the last echo's content. The message content changes
   at every batch, so a channel that hands back a stale buffer is caught;
3. once the loops are over, compute the statistics (:mod:`daemonkit.bench.stats`).

Facts about the timed loop:

* Nothing but the round trip and the timestamp runs inside it: no progress, no checks, no
  allocation. Everything else happens between batches.
* The first round trip after control traffic also pays for the other end's wake-up from its
  command pipe: each batch runs one untimed round trip first.
* A batch runs under :meth:`Link.guard`: an other end that dies or falls silent raises
  instead of blocking the client for ever.

*Kernel path*: the channel's own calls in the timed loop; getrusage(2) with
``RUSAGE_THREAD`` around each batch.
*Lifetime*: nothing of its own: the end and the link belong to the caller.
*See also*: getrusage(2), clock_gettime(2), :mod:`daemonkit.bench.runner`.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time
import zlib
from array import array
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from daemonkit.bench.distribution import encode
from daemonkit.bench.peer import (
    CtxSwitches,
    exact_roundtrips,
    notify_roundtrips,
    payload_roundtrips,
    spin_roundtrips,
    wire_size,
)
from daemonkit.bench.results import CpuCost, CpuPerRoundtrip, CtxPerRoundtrip, EndPair, Result
from daemonkit.bench.stats import histogram, latency
from daemonkit.channels.base import End, NotifyEnd, PayloadEnd
from daemonkit.errors import ChannelError

__all__ = [
    "SETUP_TIMEOUT",
    "EchoServerLink",
    "Link",
    "Mode",
    "Progress",
    "Settings",
    "client_usage",
    "measure",
]

Mode = Literal["pingpong", "stream"]
Progress = Callable[[str, float], None]  # (what runs now, fraction of this case done)

SETUP_TIMEOUT = 20.0  # s for the other end to get ready, and for a batch of unknown length
_BATCH_S = 0.25  # aim for batches this long: progress stays live, a hang is caught early
_BATCHES = 10  # at least this many batches (content checks) when the count allows


@dataclass(frozen=True)
class Settings:
    """How long each case runs (a fixed count, or a duration), and how: round trips
    (``pingpong``) or one-way messages (``stream``, :mod:`daemonkit.bench.stream`)."""

    iterations: int | None
    duration: float | None
    warmup: int
    mode: Mode = "pingpong"


class Link(Protocol):
    """How the client drives and watches the other end, between batches (never inside one)."""

    exact_size: bool  # the other end echoes exactly the case's size: no frame on a stream

    def guard(self, timeout: float) -> AbstractContextManager[None]:
        """While inside, a dead or silent other end raises instead of blocking forever."""
        ...

    def start(self, n: int, untimed: int = 0) -> None:
        """The other end is to echo *n* messages, the first *untimed* of them outside its
        counts where it can (its report's ``messages`` says what they cover)."""
        ...

    def finish(self) -> CtxSwitches:
        """After the batch: the other end's context switches (and CPU time, when known)
        during it."""
        ...


class EchoServerLink:
    """What a :class:`Link` to a server that echoes whatever arrives (the daemon, a ``daemonkit
    serve``) has in common: nothing to command, and its context switches read by *switches*
    before and after each batch. A subclass adds :meth:`Link.guard`."""

    exact_size = False  # the other end reads frames: it cannot know the size

    def __init__(self, channel: str, switches: Callable[[], CtxSwitches]) -> None:
        self.channel = channel
        self._switches = switches
        self._before = CtxSwitches(0, 0)

    def start(self, n: int, untimed: int = 0) -> None:
        self._before = self._switches()

    def finish(self) -> CtxSwitches:
        return self._switches() - self._before


class _Echo:
    """The client's buffers for one case and the checks made on them after each batch.

    With *exact* (the other end echoes exactly the case's size) a byte stream runs the lean
    loop (:func:`~daemonkit.bench.peer.exact_roundtrips`): no frame header, and every echo is
    the wire size by construction, since the loop reads exactly that many bytes or raises.
    """

    def __init__(self, channel: str, end: PayloadEnd | NotifyEnd, size: int, exact: bool) -> None:
        self.channel = channel
        self.end = end
        self.fds = end.stream_fds() if exact and isinstance(end, PayloadEnd) else None
        self.spin = end.spin_words() if exact and isinstance(end, PayloadEnd) else None
        self.size = size if isinstance(end, PayloadEnd) else 0
        wire = wire_size(self.size) if self.fds is not None else self.size
        self._msg = bytearray(wire)
        self.msg = memoryview(self._msg)
        self.rbuf = memoryview(bytearray(max(wire, 1)))
        self._rng = random.Random(os.getpid())
        self.checksums = 0

    @property
    def framed(self) -> bool | None:
        """Whether a frame header travelled with each message (None: not a byte stream)."""
        if not isinstance(self.end, PayloadEnd):
            return None
        if self.fds is not None:
            return False
        return True if self.end.stream_fds() is not None else None

    def new_content(self) -> None:
        """Fresh bytes for the next batch: an echo of an older batch will not match."""
        if self._msg:
            self._msg[:] = self._rng.randbytes(len(self._msg))

    def roundtrips(self, samples: array[int], got: array[int]) -> None:
        if self.fds is not None:
            exact_roundtrips(self.channel, self.fds, self.msg, self.rbuf, samples)
        elif self.spin is not None:
            spin_roundtrips(self.spin, self.msg, self.rbuf, samples)
        elif isinstance(self.end, PayloadEnd):
            payload_roundtrips(self.end, self.msg, self.rbuf, samples, got)
        else:
            notify_roundtrips(self.end, samples)

    def verify(self, got: array[int], content: bool = True) -> None:
        """Every echoed length; and, with *content*, the last echo's bytes (CRC-32)."""
        if not isinstance(self.end, PayloadEnd) or not len(got):
            return
        exact = self.fds is not None or self.spin is not None  # lengths hold by construction
        if not exact and got.count(self.size) != len(got):
            i = next(i for i, n in enumerate(got) if n != self.size)
            raise ChannelError(
                self.channel, f"echo {i} of a batch had {got[i]} bytes, {self.size} were sent"
            )
        wire = len(self.msg)
        if wire and content:
            self.checksums += 1
            if zlib.crc32(self.rbuf[:wire]) != zlib.crc32(self.msg):
                raise ChannelError(self.channel, "echoed bytes differ from those sent (CRC-32)")


@dataclass
class _Totals:
    """What the kernel counted over the timed batches, summed, and what each batch showed."""

    client: CtxSwitches = field(default_factory=lambda: CtxSwitches(0, 0, 0.0, 0.0))
    peer: CtxSwitches = field(default_factory=lambda: CtxSwitches(0, 0, 0.0, 0.0))
    peer_known: bool = True  # False once the other end reports no CPU time
    wall_ns: int = 0  # wall time of the timed loops, loop overhead included
    batch_p50_ns: list[float] = field(default_factory=list)
    ran_on: dict[str, set[int]] = field(default_factory=lambda: {"client": set(), "peer": set()})

    def add(self, client: CtxSwitches, peer: CtxSwitches, p50: float) -> None:
        self.client = _plus(self.client, client)
        self.peer = _plus(self.peer, peer)
        self.peer_known = self.peer_known and peer.cpu_s is not None
        self.batch_p50_ns.append(p50)
        for side, seen in (("client", client), ("peer", peer)):
            if seen.last_cpu is not None:
                self.ran_on[side].add(seen.last_cpu)


def _plus(a: CtxSwitches, b: CtxSwitches) -> CtxSwitches:
    return CtxSwitches(
        a.voluntary + b.voluntary,
        a.involuntary + b.involuntary,
        (a.user_s or 0.0) + (b.user_s or 0.0),
        (a.system_s or 0.0) + (b.system_s or 0.0),
    )


def client_usage(
    thread: CtxSwitches, process: CtxSwitches, peer: CtxSwitches, peer_is_thread: bool
) -> CtxSwitches:
    """The client's counts over a batch: its thread's switches, and the CPU time of its whole
    process (a feeder or I/O thread works for it) less a thread peer's own."""
    user, system = process.user_s or 0.0, process.system_s or 0.0
    if peer_is_thread:
        user -= peer.user_s or 0.0
        system -= peer.system_s or 0.0
    return CtxSwitches(
        thread.voluntary, thread.involuntary, max(user, 0.0), max(system, 0.0), thread.last_cpu
    )


def measure(
    base: Result,
    end: End,
    link: Link,
    settings: Settings,
    progress: Progress,
    peer_cpus: list[int] | None,
) -> Result:
    """Warm-up, then timed batches over *end*; statistics once they are over.

    *base* names the case (its channel, peer, size); *peer_cpus* are the CPUs the other end
    may run on, when known. A failing channel or other end raises (ChannelError and kin).
    """
    assert isinstance(end, PayloadEnd | NotifyEnd)
    what = f"{base.channel} {base.peer} {base.size} B"
    echo = _Echo(base.channel, end, base.size, link.exact_size)
    client_cpus = sorted(os.sched_getaffinity(0))
    peer_is_thread = base.peer == "thread"  # its CPU time is inside this process's

    def batch(
        n: int, rewarm: int, est_ns: float | None
    ) -> tuple[array[int], CtxSwitches, CtxSwitches, int]:
        samples, got = array("q", bytes(8 * n)), array("q", bytes(8 * n))
        warm_s, warm_g = array("q", bytes(8 * rewarm)), array("q", bytes(8 * rewarm))
        echo.new_content()
        timeout = max(10.0, 20 * n * est_ns / 1e9) if est_ns else SETUP_TIMEOUT
        with link.guard(timeout):
            link.start(n + rewarm, untimed=rewarm)
            # The first round trip after control traffic also pays for the other end's
            # wake-up from its command pipe: run it untimed (one warm-up per batch).
            echo.roundtrips(warm_s, warm_g)
            # The process's CPU time and the wall clock are read right around the loop (the
            # thread's switches outside them), so the CPU share is the loop's own.
            thread0 = CtxSwitches.of_this_thread()
            proc0, wall0 = CtxSwitches.of_this_process(), time.perf_counter_ns()
            echo.roundtrips(samples, got)
            wall1, proc1 = time.perf_counter_ns(), CtxSwitches.of_this_process()
            thread1 = CtxSwitches.of_this_thread()
            peer = link.finish()
        echo.verify(warm_g, content=False)  # rbuf holds the batch's last echo by now
        echo.verify(got)
        mine = client_usage(thread1 - thread0, proc1 - proc0, peer, peer_is_thread)
        return samples, mine, peer, wall1 - wall0

    est_ns: float | None = None
    rewarm = 1 if settings.warmup else 0
    if settings.warmup:  # warm-up, discarded
        progress(f"{what}: warm-up", 0.0)
        warm, _, _, _ = batch(settings.warmup, 0, None)
        est_ns = sum(warm) / len(warm)

    all_samples: array[int] = array("q")
    totals = _Totals()
    peer_roundtrips = 0
    started = time.monotonic()
    target, duration = settings.iterations, settings.duration
    per_batch = math.ceil(target / _BATCHES) if target else 0
    while True:
        if target is not None:
            left = target - len(all_samples)
            if left <= 0:
                break
            n = min(left, per_batch)
            if est_ns:
                n = min(n, max(1, int(_BATCH_S * 1e9 / est_ns)))
        else:
            assert duration is not None
            if time.monotonic() - started >= duration:
                break
            span = min(_BATCH_S, duration / _BATCHES)
            n = max(1, int(span * 1e9 / est_ns)) if est_ns else 100
        samples, mine, peer, wall = batch(n, rewarm, est_ns)
        totals.wall_ns += wall
        all_samples.extend(samples)
        totals.add(mine, peer, statistics.median(samples))
        # what the other end's counts cover: all it echoed, unless it says (a local peer
        # counts only the timed messages)
        peer_roundtrips += peer.messages if peer.messages is not None else n + rewarm
        est_ns = sum(samples) / n
        if target is not None:
            progress(what, len(all_samples) / target)
        else:
            assert duration is not None
            progress(what, min(1.0, (time.monotonic() - started) / duration))

    pinning = {
        "client": client_cpus,
        "peer": list(peer_cpus) if peer_cpus is not None else [],
    }
    return _summarise(base, all_samples, totals, peer_roundtrips, echo, pinning)


def _summarise(
    base: Result,
    samples: array[int],
    totals: _Totals,
    peer_roundtrips: int,
    echo: _Echo,
    pinning: dict[str, list[int]],
) -> Result:
    """Statistics, computed once the loops are over."""
    n = len(samples)
    rps = n / (sum(samples) / 1e9)
    c, p = totals.client, totals.peer

    def us(seconds: float | None, count: int) -> float:
        return round((seconds or 0.0) * 1e6 / count, 4)

    return replace(
        base,
        iterations=n,
        latency_ns=latency(samples),
        roundtrips_per_s=round(rps, 1),
        mb_per_s=round(2 * base.size * rps / 1e6, 3) if base.payload else None,
        ctx_switches_per_roundtrip=CtxPerRoundtrip(
            voluntary=EndPair(
                round(c.voluntary / n, 4),
                round(p.voluntary / peer_roundtrips, 4),
            ),
            involuntary=EndPair(
                round(c.involuntary / n, 4),
                round(p.involuntary / peer_roundtrips, 4),
            ),
        ),
        wall_us_per_roundtrip=round(totals.wall_ns / 1000 / n, 4),
        cpu_us_per_roundtrip=CpuPerRoundtrip(
            client=CpuCost(us(c.user_s, n), us(c.system_s, n)),
            peer=(
                CpuCost(us(p.user_s, peer_roundtrips), us(p.system_s, peer_roundtrips))
                if totals.peer_known
                else None
            ),
        ),
        histogram=histogram(samples),
        pinning=pinning,
        ran_on={side: sorted(cpus) for side, cpus in totals.ran_on.items()},
        batch_p50_ns=[round(x, 1) for x in totals.batch_p50_ns],
        framed=echo.framed,
        verified={"sizes": n, "checksums": echo.checksums},
        latency_hdr=encode(samples),
    )
