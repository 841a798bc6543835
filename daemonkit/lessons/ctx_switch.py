"""C2 + C3: a process switch costs far more than a thread switch; after a switch caches are cold.

The method is lmbench's ``lat_ctx``: two peers pinned to one CPU pass a token through pipes, so
every hop is a context switch; at each hop the peer that receives reads its private working
set of W bytes (``bytes.find`` of a byte that is not there: ``memchr`` over all W bytes, at C
speed). The ring is the pipe channel driven by :class:`daemonkit.bench.peer.Peer`, whose ends
are wrapped so that each receive also reads the working set.

The cost of the same work with no switch is measured separately and subtracted, as lat_ctx
does: the pipe calls done by one thread (no peer to switch to) plus one read of a working set
that this thread has just read (hot). Two switches per round trip, so
``per_switch = (round_trip - pipe_calls_alone - 2 * hot_read) / 2``. That figure includes
refilling the caches with the working set the switch made cold, which is what C3 is about. A
second baseline (one thread doing the pipe calls *and* reading both working sets in turn) also
cancels the misses that come from two working sets sharing one cache, leaving what the switch
itself costs beyond that ("beyond same work" in the table).

Facts that keep the numbers honest:

* Each working set is allocated *after* the fork, in the side that reads it, and written
  once (``b"\\x02" * W`` is a memset): otherwise parent and child would read the same
  copy-on-write frames, or the kernel's shared zero page.
* The kernel counts the switches actually made (``getrusage(RUSAGE_THREAD)``, both sides):
  two per round trip, voluntary (the side blocked in ``read``) or involuntary (the woken
  reader preempted the writer before it blocked); fewer means some hop did not switch, and
  the per-switch figure is then not a switch cost.
* Every point is repeated, thread and process batches interleaved; the report gives the
  median and interquartile range and says when those ranges overlap (within noise).
* The same ping-pong, W=0, also runs with the peers on two CPUs (``split``) and unpinned
  (``none``), to see whether placement or thread-versus-process moves the number more.

See also: sched_setaffinity(2), getrusage(2), pipe(7), perf-stat(1); McVoy & Staelin,
"lmbench: Portable tools for performance analysis" (lat_ctx).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from array import array
from collections.abc import Iterator
from typing import Any

from daemonkit.bench.machine import CpuMode, placement
from daemonkit.bench.peer import CtxSwitches, Peer, payload_roundtrips
from daemonkit.channels import channel_class
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.lessons import _perf
from daemonkit.lessons.report import Table, Tick, Verdict, overlap, spread
from daemonkit.lessons.text import Tr, fmt_ns, fmt_size

__all__ = ["CLAIMS", "NAME", "run", "tables", "verdicts"]

NAME = "ctx-switch"
CLAIMS = ("C2", "C3")

KiB, MiB = 1 << 10, 1 << 20
W_FULL = (0, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB)
W_QUICK = (0, 1 * MiB, 16 * MiB)
KINDS: tuple[PeerKind, ...] = ("thread", "process")
PLACEMENTS: tuple[CpuMode, ...] = ("same", "split", "none")
PERF_EVENTS = ("dTLB-load-misses", "cache-misses")

FAR_MORE = 2.0  # process/thread per-switch ratio that counts as "far more"
MIN_SWITCHES = 1.8  # switches per round trip (both sides, both kinds) below which a hop did not
COLD = 2.0  # per-switch cost at the largest W over W=0: the switch left the caches cold
GAP_GROWTH = 1.5  # the process's extra cost over W grows this much more than the thread's


# -- the ring: the pipe channel with a working set read at every receive -----------------


class _WorkingSetEnd(PayloadEnd):
    """A pipe end that reads this side's private working set after every receive."""

    def __init__(self, inner: PayloadEnd, size: int) -> None:
        self._inner = inner
        self._ws = b"\x02" * size  # memset: real private frames, not the shared zero page
        self._find = self._ws.find

    def send(self, data: memoryview) -> None:
        self._inner.send(data)

    def recv_into(self, buf: memoryview) -> int:
        n = self._inner.recv_into(buf)
        self._find(b"\x01")  # memchr over all W bytes: W bytes through the caches and TLB
        return n

    def _close(self) -> None:
        self._inner.close()
        self._ws = b""


class _WorkingSetChannel(Channel):
    name = "pipe"
    summary = "the pipe channel, with a working-set read at every receive"
    payload = True

    def __init__(self, peer: PeerKind, ws: int) -> None:
        super().__init__(peer, 0)
        self._ws = ws
        self._inner = channel_class("pipe")(peer, 0)

    def open(self, role: Role) -> PayloadEnd:
        end = self._inner.open(role)
        assert isinstance(end, PayloadEnd)
        return _WorkingSetEnd(end, self._ws)  # allocated here: in the side that reads it

    def _remove(self) -> None:
        self._inner.close()


_MSG = memoryview(b"")  # the token: a zero-byte message (its 4-byte frame header)


class _Ring:
    """The client end in this thread and a peer (thread or forked process) on *cpu*."""

    def __init__(self, stack: contextlib.ExitStack, kind: PeerKind, ws: int, cpu: int | None):
        self.kind = kind
        self.channel = stack.enter_context(_WorkingSetChannel(kind, ws))
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


def _solo(ws: int, n: int) -> float:
    """The same sends and receives all in this thread (no switch), reading both working sets."""
    with _WorkingSetChannel("thread", ws) as ch, ch.open("client") as c, ch.open("server") as s:
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


def _hot_read(ws: int, n: int) -> float:
    """One read of a working set this thread just read: cached, as far as W fits."""
    data = b"\x02" * ws
    find = data.find
    clock = time.perf_counter_ns
    find(b"\x01")  # warm it
    samples = array("q", [0] * n)
    for i in range(n):
        t0 = clock()
        find(b"\x01")
        samples[i] = clock() - t0
    return float(statistics.median(samples))


@contextlib.contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    """Pin this thread to *cpu* (None: leave it free) and restore its mask afterwards."""
    old = os.sched_getaffinity(0)
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # peers started now inherit it, then pin themselves
        yield
    finally:
        os.sched_setaffinity(0, old)


def _count(ring: _Ring, batch_s: float) -> int:
    """Round trips per batch so that one batch takes about *batch_s* seconds."""
    t0 = time.perf_counter()
    ring.batch(20)
    per = (time.perf_counter() - t0) / 20
    return max(20, min(20000, int(batch_s / per)))


def _measure(
    ws: int, cpus: tuple[int | None, int | None], reps: int, batch_s: float, perf: bool
) -> dict[str, Any]:
    """Interleaved repeats of thread and process rings (and the solo baseline) at one W."""
    raw: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    out: dict[str, Any] = {"w": ws}
    with _pinned(cpus[0]), contextlib.ExitStack() as stack:
        # The process ring first: fork before the thread ring's thread exists.
        rings = {k: _Ring(stack, k, ws, cpus[1]) for k in ("process", "thread")}
        n = min(_count(r, batch_s) for r in rings.values())
        same_cpu = cpus[0] == cpus[1]
        pipe, hot, both = [], [], []
        for _ in range(reps):
            for k in KINDS:
                raw[k].append(rings[k].batch(n))
            if same_cpu:
                pipe.append(_solo(0, n))
                hot.append(_hot_read(ws, n))
                both.append(_solo(ws, n))
        out["n"] = n
        if same_cpu:
            out["pipe_alone_ns"] = spread(pipe)
            out["hot_read_ns"] = spread(hot)
            out["same_work_ns"] = spread(both)
            lat_ctx = statistics.median(pipe) + 2 * statistics.median(hot)
            work = statistics.median(both)
        for k in KINDS:
            rtt = [b["rtt_ns"] for b in raw[k]]
            out[k] = {
                "rtt_ns": spread(rtt),
                "switches_per_rtt": statistics.median(b["vcs"] + b["ivcs"] for b in raw[k]),
                "voluntary_per_rtt": statistics.median(b["vcs"] for b in raw[k]),
            }
            if same_cpu:
                out[k]["switch_ns"] = spread([(x - lat_ctx) / 2 for x in rtt])
                out[k]["beyond_same_work_ns"] = spread([(x - work) / 2 for x in rtt])
            if perf:
                pids = [os.getpid()] + ([rings[k].peer.pid or 0] if k == "process" else [])
                with _perf.attach(pids, PERF_EVENTS) as counts:
                    rings[k].batch(n)
                out[k]["perf_per_switch"] = {e: c / (2 * n) for e, c in counts.items()}
    return out


def run(
    quick: bool,
    tick: Tick,
    ws: tuple[int, ...] | None = None,
    reps: int | None = None,
    batch_s: float | None = None,
) -> dict[str, Any]:
    ws = ws or (W_QUICK if quick else W_FULL)
    reps = reps or (3 if quick else 11)
    batch_s = batch_s or (0.04 if quick else 0.2)
    same = placement("same")
    perf_reason = _perf.probe(PERF_EVENTS)
    m: dict[str, Any] = {
        "cpu": same.client_cpu,
        "reps": reps,
        "perf_events": list(PERF_EVENTS),
        "perf_unavailable": perf_reason,
        "sweep": [],
        "placement": [],
    }
    for w in ws:
        cpus = (same.client_cpu, same.peer_cpu)
        m["sweep"].append(_measure(w, cpus, reps, batch_s, perf_reason is None))
        tick("step.ctx-switch.w")
    for mode in PLACEMENTS:
        where = placement(mode)
        if where.note:  # split with one CPU allowed: it would only repeat "same"
            m["placement"].append({"placement": mode, "unavailable": where.note})
            continue
        row = _measure(0, (where.client_cpu, where.peer_cpu), reps, batch_s, False)
        row["placement"] = mode
        m["placement"].append(row)
        tick("step.ctx-switch.placement")
    return m


# -- verdicts: pure functions of the measurements ----------------------------------------


def factors(m: dict[str, Any]) -> dict[str, float] | None:
    """How far placement and thread/process each moved the W=0 round trip (medians, ns)."""
    rows = [r for r in m["placement"] if "unavailable" not in r]
    if len(rows) < 2:
        return None
    med = {(r["placement"], k): r[k]["rtt_ns"]["median"] for r in rows for k in KINDS}
    kind = max(
        abs(med[(r["placement"], "process")] - med[(r["placement"], "thread")]) for r in rows
    )
    place = max(
        max(med[(r["placement"], k)] for r in rows) - min(med[(r["placement"], k)] for r in rows)
        for k in KINDS
    )
    return {"kind_effect_ns": kind, "placement_effect_ns": place}


def _missing_switches(m: dict[str, Any]) -> list[str]:
    return [
        f"{k}@{fmt_size(r['w'])}"
        for r in m["sweep"]
        for k in KINDS
        if r[k]["switches_per_rtt"] < MIN_SWITCHES
    ]


def verdict_c2(m: dict[str, Any]) -> Verdict:
    sweep = m["sweep"]
    ratios: list[tuple[int, float | None, bool]] = []
    for r in sweep:
        t, p = r["thread"]["switch_ns"], r["process"]["switch_ns"]
        ratio = p["median"] / t["median"] if t["median"] > 0 and p["median"] > 0 else None
        ratios.append((r["w"], ratio, overlap(p, t)))
    far = [w for w, q, noise in ratios if q is not None and q >= FAR_MORE and not noise]
    more = [w for w, q, noise in ratios if q is not None and q > 1 and not noise]
    noisy = [fmt_size(w) for w, _, noise in ratios if noise]

    def fmt(q: float | None) -> str:
        return "n/a" if q is None else f"{q:.2f}"

    args: dict[str, Any] = {
        "w0": fmt_size(ratios[0][0]),
        "r0": fmt(ratios[0][1]),
        "wmax": fmt_size(ratios[-1][0]),
        "rmax": fmt(ratios[-1][1]),
        "ratios": ", ".join(f"{fmt_size(w)}: {fmt(q)}" for w, q, _ in ratios),
        "far": FAR_MORE,
        "noisy": ", ".join(noisy) or "-",
        "min_switches": MIN_SWITCHES,
        "missing": ", ".join(_missing_switches(m)) or "-",
    }
    extra: list[str] = []
    if noisy:
        extra.append("verdict.ctx-switch.noisy")
    f = factors(m)
    if f is not None:
        args.update({k: fmt_ns(v) for k, v in f.items()})
        bigger = f["placement_effect_ns"] > f["kind_effect_ns"]
        extra.append("verdict.ctx-switch.placement" if bigger else "verdict.ctx-switch.kind")
    if _missing_switches(m):
        label: Any = "inconclusive"
        extra.insert(0, "verdict.ctx-switch.missing")
    elif len(far) == len(sweep):
        label = "holds"
    elif far or more:
        label = "partly holds"
    else:
        label = "does not hold"
    return Verdict("C2", label, "verdict.ctx-switch", "threshold.ctx-switch", args, tuple(extra))


def verdict_c3(m: dict[str, Any]) -> Verdict:
    lo, hi = m["sweep"][0], m["sweep"][-1]
    cold: dict[str, float] = {}
    growth: dict[str, float] = {}
    above: dict[str, bool] = {}
    for k in KINDS:
        a, b = lo[k]["switch_ns"], hi[k]["switch_ns"]
        cold[k] = b["median"] / a["median"] if a["median"] > 0 else 0.0
        growth[k] = b["median"] - a["median"]
        above[k] = b["q1"] > a["q3"]  # grew beyond the noise of both points
    is_cold = any(cold[k] >= COLD and above[k] for k in KINDS)
    gap_grows = (
        growth["process"] > 0
        and growth["process"] >= GAP_GROWTH * max(growth["thread"], 0.0)
        and hi["process"]["switch_ns"]["q1"] > hi["thread"]["switch_ns"]["q3"]
    )
    label: Any = (
        "holds"
        if is_cold and gap_grows
        else "partly holds"
        if is_cold or gap_grows
        else "does not hold"
    )
    args: dict[str, Any] = {
        "w0": fmt_size(lo["w"]),
        "wmax": fmt_size(hi["w"]),
        "cold_thread": f"{cold['thread']:.2f}",
        "cold_process": f"{cold['process']:.2f}",
        "grow_thread": fmt_ns(growth["thread"]),
        "grow_process": fmt_ns(growth["process"]),
        "cold": COLD,
        "gap": GAP_GROWTH,
        "perf": m["perf_unavailable"] or "-",
    }
    extra: list[str] = []
    if m["perf_unavailable"]:
        extra.append("verdict.ctx-switch.perf_unavailable")
    else:
        per = {k: hi[k].get("perf_per_switch", {}) for k in KINDS}
        args["tlb_thread"] = f"{per['thread'].get('dTLB-load-misses', 0):.0f}"
        args["tlb_process"] = f"{per['process'].get('dTLB-load-misses', 0):.0f}"
        extra.append("verdict.ctx-switch.perf")
    return Verdict(
        "C3", label, "verdict.ctx-switch.c3", "threshold.ctx-switch.c3", args, tuple(extra)
    )


def verdicts(m: dict[str, Any]) -> list[Verdict]:
    return [verdict_c2(m), verdict_c3(m)]


# -- the terminal view -------------------------------------------------------------------


def _cell(s: dict[str, float]) -> str:
    return f"{fmt_ns(s['median'])} [{fmt_ns(s['q1'])}–{fmt_ns(s['q3'])}]"


def tables(m: dict[str, Any], tr: Tr) -> list[Table]:
    rows = []
    for r in m["sweep"]:
        t, p = r["thread"], r["process"]
        ts, ps = t["switch_ns"], p["switch_ns"]
        ratio = f"{ps['median'] / ts['median']:.2f}" if ts["median"] > 0 else "n/a"
        rows.append(
            [
                fmt_size(r["w"]),
                fmt_ns(r["pipe_alone_ns"]["median"] + 2 * r["hot_read_ns"]["median"]),
                _cell(ts),
                _cell(ps),
                ratio + (" ~" if overlap(ts, ps) else ""),
                f"{fmt_ns(t['beyond_same_work_ns']['median'])} / "
                f"{fmt_ns(p['beyond_same_work_ns']['median'])}",
                f"{t['switches_per_rtt']:.2f} / {p['switches_per_rtt']:.2f}",
            ]
        )
    cols = ("cs.col.w", "cs.col.base", "cs.col.thread", "cs.col.process", "cs.col.ratio")
    sweep = Table("cs.sweep.title", (*cols, "cs.col.beyond", "cs.col.switches"), rows)
    prow = []
    for r in m["placement"]:
        name = tr("cs.place." + r["placement"])
        if "unavailable" in r:
            prow.append([name, tr("unavailable"), "", ""])
            continue
        t, p = r["thread"], r["process"]
        prow.append(
            [
                name,
                _cell(t["rtt_ns"]),
                _cell(p["rtt_ns"]),
                f"{t['switches_per_rtt']:.2f} / {p['switches_per_rtt']:.2f}",
            ]
        )
    pcols = ("cs.col.placement", "cs.col.rtt_thread", "cs.col.rtt_process", "cs.col.switches")
    out = [sweep, Table("cs.place.title", pcols, prow)]
    if m["perf_unavailable"] is None:
        perf_rows = [
            [fmt_size(r["w"])]
            + [
                f"{r[k].get('perf_per_switch', {}).get(e, 0):.0f}"
                for k in KINDS
                for e in PERF_EVENTS
            ]
            for r in m["sweep"]
        ]
        ecols = (
            "cs.col.tlb_thread",
            "cs.col.cache_thread",
            "cs.col.tlb_process",
            "cs.col.cache_process",
        )
        out.append(Table("cs.perf.title", ("cs.col.w", *ecols), perf_rows))
    return out
