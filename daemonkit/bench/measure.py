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
import time
import zlib
from array import array
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from daemonkit.bench.peer import CtxSwitches, notify_roundtrips, payload_roundtrips
from daemonkit.bench.results import CtxPerRoundtrip, EndPair, Result
from daemonkit.bench.stats import histogram, latency
from daemonkit.channels.base import End, NotifyEnd, PayloadEnd
from daemonkit.errors import ChannelError

__all__ = ["SETUP_TIMEOUT", "Link", "Progress", "Settings", "measure"]

Progress = Callable[[str, float], None]  # (what runs now, fraction of this case done)

SETUP_TIMEOUT = 20.0  # s for the other end to get ready, and for a batch of unknown length
_BATCH_S = 0.25  # aim for batches this long: progress stays live, a hang is caught early
_BATCHES = 10  # at least this many batches (content checks) when the count allows


@dataclass(frozen=True)
class Settings:
    """How long each case runs: a fixed count, or a duration."""

    iterations: int | None
    duration: float | None
    warmup: int


class Link(Protocol):
    """How the client drives and watches the other end, between batches (never inside one)."""

    def guard(self, timeout: float) -> AbstractContextManager[None]:
        """While inside, a dead or silent other end raises instead of blocking forever."""
        ...

    def start(self, n: int) -> None:
        """The other end is to echo *n* messages."""
        ...

    def finish(self) -> CtxSwitches:
        """After the batch: the other end's context switches during it."""
        ...


class _Echo:
    """The client's buffers for one case and the checks made on them after each batch."""

    def __init__(self, channel: str, end: PayloadEnd | NotifyEnd, size: int) -> None:
        self.channel = channel
        self.end = end
        self.size = size if isinstance(end, PayloadEnd) else 0
        self._msg = bytearray(self.size)
        self.msg = memoryview(self._msg)
        self.rbuf = memoryview(bytearray(max(self.size, 1)))
        self._rng = random.Random(os.getpid())
        self.checksums = 0

    def new_content(self) -> None:
        """Fresh bytes for the next batch: an echo of an older batch will not match."""
        if self.size:
            self._msg[:] = self._rng.randbytes(self.size)

    def roundtrips(self, samples: array[int], got: array[int]) -> None:
        if isinstance(self.end, PayloadEnd):
            payload_roundtrips(self.end, self.msg, self.rbuf, samples, got)
        else:
            notify_roundtrips(self.end, samples)

    def verify(self, got: array[int], content: bool = True) -> None:
        """Every echoed length; and, with *content*, the last echo's bytes (CRC-32)."""
        if not isinstance(self.end, PayloadEnd) or not len(got):
            return
        if got.count(self.size) != len(got):
            i = next(i for i, n in enumerate(got) if n != self.size)
            raise ChannelError(
                self.channel, f"echo {i} of a batch had {got[i]} bytes, {self.size} were sent"
            )
        if self.size and content:
            self.checksums += 1
            if zlib.crc32(self.rbuf[: self.size]) != zlib.crc32(self.msg):
                raise ChannelError(self.channel, "echoed bytes differ from those sent (CRC-32)")


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
    echo = _Echo(base.channel, end, base.size)
    client_cpus = sorted(os.sched_getaffinity(0))

    def batch(n: int, rewarm: int, est_ns: float | None) -> tuple[array[int], dict[str, int]]:
        samples, got = array("q", bytes(8 * n)), array("q", bytes(8 * n))
        warm_s, warm_g = array("q", bytes(8 * rewarm)), array("q", bytes(8 * rewarm))
        echo.new_content()
        timeout = max(10.0, 20 * n * est_ns / 1e9) if est_ns else SETUP_TIMEOUT
        with link.guard(timeout):
            link.start(n + rewarm)
            # The first round trip after control traffic also pays for the other end's
            # wake-up from its command pipe: run it untimed (one warm-up per batch).
            echo.roundtrips(warm_s, warm_g)
            before = CtxSwitches.of_this_thread()
            echo.roundtrips(samples, got)
            cs = CtxSwitches.of_this_thread() - before
            peer_cs = link.finish()
        echo.verify(warm_g, content=False)  # rbuf holds the batch's last echo by now
        echo.verify(got)
        return samples, {
            "voluntary": cs.voluntary,
            "involuntary": cs.involuntary,
            "peer_voluntary": peer_cs.voluntary,
            "peer_involuntary": peer_cs.involuntary,
        }

    est_ns: float | None = None
    rewarm = 1 if settings.warmup else 0
    if settings.warmup:  # warm-up, discarded
        progress(f"{what}: warm-up", 0.0)
        warm, _ = batch(settings.warmup, 0, None)
        est_ns = sum(warm) / len(warm)

    all_samples: array[int] = array("q")
    totals = dict.fromkeys(("voluntary", "involuntary", "peer_voluntary", "peer_involuntary"), 0)
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
        samples, counts = batch(n, rewarm, est_ns)
        all_samples.extend(samples)
        for k, v in counts.items():
            totals[k] += v
        peer_roundtrips += n + rewarm
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
    totals: dict[str, int],
    peer_roundtrips: int,
    echo: _Echo,
    pinning: dict[str, list[int]],
) -> Result:
    """Statistics, computed once the loops are over."""
    n = len(samples)
    rps = n / (sum(samples) / 1e9)
    return replace(
        base,
        iterations=n,
        latency_ns=latency(samples),
        roundtrips_per_s=round(rps, 1),
        mb_per_s=round(2 * base.size * rps / 1e6, 3) if base.payload else None,
        ctx_switches_per_roundtrip=CtxPerRoundtrip(
            voluntary=EndPair(
                round(totals["voluntary"] / n, 4),
                round(totals["peer_voluntary"] / peer_roundtrips, 4),
            ),
            involuntary=EndPair(
                round(totals["involuntary"] / n, 4),
                round(totals["peer_involuntary"] / peer_roundtrips, 4),
            ),
        ),
        histogram=histogram(samples),
        pinning=pinning,
        verified={"sizes": n, "checksums": echo.checksums},
    )
