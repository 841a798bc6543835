"""The latency runner: each (channel, peer, size) case set up, measured and torn down.

Steps of one case (:func:`run_case`); every step that holds something is undone, in reverse,
on every path out (success, a failing channel, a peer killed with SIGKILL, Ctrl-C):

1. create the channel's kernel objects, in this process, which owns them;
2. start the peer (a forked process or a thread), pinned as ``--cpu`` asks;
3. open the client end and wait for the peer's "ready" (it reports the CPUs it got);
4. warm up (samples discarded), then run timed batches: command the peer, run the timed
   loop of :mod:`daemonkit.bench.peer`, read the peer's context-switch counts, and verify the
   echoes: every echoed length (the loop stores them) and a checksum of the last echo's
   content. The message content changes at every batch, so a channel that hands back a
   stale buffer is caught;
5. close the client end (a peer blocked on the channel sees end-of-file), stop and reap the
   peer, remove the kernel objects.

Facts about interruptions:

* Ctrl-C sends SIGINT to the whole foreground process group; Python turns it into
  ``KeyboardInterrupt`` in the main thread; SIGTERM and SIGHUP are made to do the same
  (:mod:`daemonkit.interrupts`). While a case is set up or torn down, all three are
  *blocked* (``pthread_sigmask``): one stays pending in the kernel and is delivered when the
  block ends, so it can interrupt the measurement but never a half-made setup or a half-done
  cleanup. A forked peer or thread created in that window inherits the blocked mask: it
  leaves because the client end closes (end-of-file) or its command pipe does, or at worst
  because :meth:`Peer.stop` kills it.
* A peer that dies (SIGKILL) or hangs raises inside the client through :meth:`Peer.watch`;
  the error is recorded for that case, with how the peer died, and the next case runs.

*Kernel path*: fork(2) or pthread_create(3) per case, sched_setaffinity(2), getrusage(2)
with ``RUSAGE_THREAD`` around each batch, the channel's own calls in the timed loop.
*Lifetime*: every kernel object of a case lives exactly as long as the case.
*See also*: sched_setaffinity(2), getrusage(2), sigprocmask(2), signal(7).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import time
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from daemonkit.bench.peer import CtxSwitches, Peer, notify_roundtrips, payload_roundtrips
from daemonkit.bench.results import CtxPerRoundtrip, EndPair, Result
from daemonkit.bench.stats import histogram, latency
from daemonkit.channels import channel_class
from daemonkit.channels.base import Channel, End, NotifyEnd, PayloadEnd, PeerKind
from daemonkit.errors import ChannelError, DaemonkitError, SizeNotSupportedError
from daemonkit.interrupts import INTERRUPTS, record_interrupts
from daemonkit.machine import CpuMode, Placement

__all__ = [
    "Case",
    "Link",
    "Progress",
    "Settings",
    "interrupts_deferred",
    "measure",
    "plan",
    "run",
    "run_case",
]

Progress = Callable[[str, float], None]  # (what runs now, fraction of this case done)

_SETUP_TIMEOUT = 20.0  # s for the peer to get ready, and for a batch of unknown length
_BATCH_S = 0.25  # aim for batches this long: progress stays live, a hang is caught early
_BATCHES = 10  # at least this many batches (content checks) when the count allows


@dataclass(frozen=True)
class Case:
    """One measurement to make."""

    channel: str
    peer: PeerKind
    size: int
    cls: type[Channel]


@dataclass(frozen=True)
class Settings:
    """How long each case runs: a fixed count, or a duration."""

    iterations: int | None
    duration: float | None
    warmup: int


# -- planning: which cases apply ------------------------------------------------------------


def plan(
    channels: Sequence[str], peers: Sequence[PeerKind], sizes: Sequence[int], cpu: CpuMode
) -> list[Case | Result]:
    """The cases to run, in order; a :class:`Result` marks one that cannot run, with why."""
    out: list[Case | Result] = []
    for name in channels:
        try:
            cls = channel_class(name)
        except ImportError as exc:  # a channel module that is missing or broken here
            out.extend(
                Result(name, p, cpu, sizes[0], None, error=f"cannot load channel: {exc}")
                for p in peers
            )
            continue
        kinds = [p for p in peers if p in cls.peer_kinds]
        if not kinds:
            out.append(
                Result(name, peers[0], cpu, 0, cls.payload, skipped="runs between threads only")
            )
        for kind in kinds:
            if not cls.payload:  # a notification carries no bytes: one case, size 0
                out.append(Case(name, kind, 0, cls))
                continue
            limit = cls.max_message_size()
            for size in sizes:
                if limit is not None and size > limit:
                    why = f"{size} bytes exceed this channel's limit here ({limit} bytes)"
                    out.append(Result(name, kind, cpu, size, True, skipped=why))
                else:
                    out.append(Case(name, kind, size, cls))
    return out


def run(
    cases: Sequence[Any],
    settings: Settings,
    place: Placement,
    progress: Callable[[int, str, float], None] | None = None,
    run_one: Callable[[Any, Settings, Placement, Progress], Result] | None = None,
) -> list[Result]:
    """Run every case in order with the client pinned as *place* says; results in order.

    A :class:`Result` among *cases* is passed through (a case that cannot run); the others
    go to *run_one* (default :func:`run_case`: a peer of this runner).
    """
    run_one = run_one or run_case
    results: list[Result] = []
    original = os.sched_getaffinity(0)
    # A Ctrl-C swallowed by a C extension (posix_ipc) is still in the record.
    with contextlib.ExitStack() as stack:
        ctrl_c = stack.enter_context(record_interrupts())
        stack.callback(os.sched_setaffinity, 0, original)
        if place.client_cpu is not None:
            os.sched_setaffinity(0, {place.client_cpu})  # this thread; peers pin themselves
        for i, case in enumerate(cases):
            if isinstance(case, Result):
                results.append(case)
                continue

            def step(what: str, frac: float, i: int = i) -> None:
                if progress is not None:
                    progress(i, what, frac)

            results.append(run_one(case, settings, place, step))
            if ctrl_c.seen:  # the case ended as an "error" caused by Ctrl-C (or TERM, HUP)
                raise KeyboardInterrupt
    return results


# -- one case ---------------------------------------------------------------------------------


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP pending in the kernel until the block ends (see the
    module docstring)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        # Undo only our own change: a channel made inside (signal, rt-signal) blocks its
        # signal in this thread, and restoring the whole old mask would unblock it.
        ours = set(INTERRUPTS) - old
        if ours:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, ours)  # pending ones: now


def run_case(case: Case, settings: Settings, place: Placement, progress: Progress) -> Result:
    """Measure one case; a failure of the channel or its peer becomes the result's error."""
    base = Result(case.channel, case.peer, place.mode, case.size, case.cls.payload)
    stack = contextlib.ExitStack()
    peer: Peer | None = None
    try:
        try:
            with interrupts_deferred():
                channel = stack.enter_context(case.cls(case.peer, case.size))  # step 1
                peer = Peer(channel, case.peer, case.size, place.peer_cpu)
                peer.start()  # step 2
                stack.callback(peer.stop)
            end, peer_cpus = _open_client(channel, peer, stack)  # step 3
            return measure(base, end, _PeerLink(peer), settings, progress, peer_cpus)  # step 4
        finally:
            with interrupts_deferred():
                stack.close()  # step 5: client end, peer, kernel objects, in that order
    except SizeNotSupportedError as exc:
        return replace(base, skipped=str(exc))
    except (DaemonkitError, OSError) as exc:
        return replace(base, error=_with_peer_fate(str(exc), peer))
    except Exception as exc:  # a bug in a channel module: reported as its error, loudly
        return replace(base, error=_with_peer_fate(f"{type(exc).__name__}: {exc}", peer))


def _with_peer_fate(message: str, peer: Peer | None) -> str:
    """Add how a forked peer ended when that explains the failure (e.g. killed by SIGKILL)."""
    status = peer.exit_status if peer is not None else None
    if status is None or "peer process" in message:
        return message
    if os.WIFSIGNALED(status):
        return f"{message} (peer process killed by {signal.Signals(os.WTERMSIG(status)).name})"
    if os.WEXITSTATUS(status) != 0:
        return f"{message} (peer process exited with status {os.WEXITSTATUS(status)})"
    return message


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


class _PeerLink:
    """A :class:`Peer` of this runner: commands and reports over its control pipes."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def guard(self, timeout: float) -> AbstractContextManager[None]:
        return self.peer.watch(timeout)

    def start(self, n: int) -> None:
        self.peer.command(n)

    def finish(self) -> CtxSwitches:
        counts = self.peer.report()
        return CtxSwitches(int(counts["voluntary"]), int(counts["involuntary"]))


def _open_client(channel: Channel, peer: Peer, stack: contextlib.ExitStack) -> tuple[End, Any]:
    """Step 3: the client end, and the peer's "ready" report (the CPUs it got)."""
    with peer.watch(_SETUP_TIMEOUT):
        end = stack.enter_context(channel.open("client"))
        ready = peer.report()
    return end, ready.get("cpu")


def measure(
    base: Result, end: End, link: Link, settings: Settings, progress: Progress, peer_cpus: Any
) -> Result:
    """Step 4: warm-up, then timed batches over *end*; statistics once they are over."""
    assert isinstance(end, PayloadEnd | NotifyEnd)
    what = f"{base.channel} {base.peer} {base.size} B"
    echo = _Echo(base.channel, end, base.size)
    client_cpus = sorted(os.sched_getaffinity(0))

    def batch(n: int, rewarm: int, est_ns: float | None) -> tuple[array[int], dict[str, int]]:
        samples, got = array("q", bytes(8 * n)), array("q", bytes(8 * n))
        warm_s, warm_g = array("q", bytes(8 * rewarm)), array("q", bytes(8 * rewarm))
        echo.new_content()
        timeout = max(10.0, 20 * n * est_ns / 1e9) if est_ns else _SETUP_TIMEOUT
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
        "peer": list(peer_cpus) if isinstance(peer_cpus, list) else [],
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
