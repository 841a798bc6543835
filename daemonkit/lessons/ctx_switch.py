"""C2 + C3: a process switch costs far more than a thread switch; after a switch caches are cold.

The method is lmbench's ``lat_ctx``: two peers pinned to one CPU pass a token through pipes, so
every hop is a context switch; at each hop the peer that receives reads its private working
set of W bytes (the ring is in :mod:`daemonkit.lessons._ring`).

The cost of the same work with no switch is measured separately and subtracted, as lat_ctx
does: the pipe calls done by one thread (no peer to switch to) plus one read of a working set
that this thread has just read (hot). Two switches per round trip, so
``per_switch = (round_trip - pipe_calls_alone - 2 * hot_read) / 2``. That figure includes
refilling the caches with the working set the switch made cold, which is what C3 is about. A
second baseline (one thread doing the pipe calls *and* reading both working sets in turn) also
cancels the misses that come from two working sets sharing one cache, leaving what the switch
itself costs beyond that ("beyond same work" in the table).

Facts that keep the numbers honest:

* Each working set is private and really resident (see :mod:`daemonkit.lessons._ring`).
* The kernel counts the switches actually made (``getrusage(RUSAGE_THREAD)``, both sides):
  two per round trip, voluntary (the side blocked in ``read``) or involuntary (the woken
  reader preempted the writer before it blocked); fewer means some hop did not switch, and
  the per-switch figure is then not a switch cost.
* Every point is repeated, thread and process batches interleaved; the report gives the
  median and interquartile range and says when those ranges overlap (within noise).
* The same ping-pong, W=0, also runs with the peers on two CPUs (``split``) and unpinned
  (``none``), to see whether placement or thread-versus-process moves the number more.

Kernel path: pipe(7) writes and reads, a context switch per hop, W bytes read per hop.
Lifetime: every peer, pipe and CPU mask is released before each W's measurement returns.

See also: sched_setaffinity(2), getrusage(2), pipe(7), perf-stat(1); McVoy & Staelin,
"lmbench: Portable tools for performance analysis" (lat_ctx).
"""

from __future__ import annotations

import contextlib
import os
import statistics
from typing import Any

from daemonkit.channels.base import PeerKind
from daemonkit.lessons import _perf
from daemonkit.lessons._ring import Ring, hot_read, pinned, rounds_per_batch, solo
from daemonkit.lessons.report import Table, Tick, Verdict, overlap, spread
from daemonkit.lessons.text import Tr, fmt_ns, fmt_size
from daemonkit.machine import CpuMode, placement

__all__ = ["CLAIMS", "NAME", "run", "steps", "tables", "verdicts"]

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


def _measure(
    ws: int, cpus: tuple[int | None, int | None], reps: int, batch_s: float, perf: bool
) -> dict[str, Any]:
    """Interleaved repeats of thread and process rings (and the solo baseline) at one W."""
    raw: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    out: dict[str, Any] = {"w": ws}
    with pinned(cpus[0]), contextlib.ExitStack() as stack:
        # The process ring first: fork before the thread ring's thread exists.
        rings = {k: Ring(stack, k, ws, cpus[1]) for k in ("process", "thread")}
        n = min(rounds_per_batch(r, batch_s) for r in rings.values())
        same_cpu = cpus[0] == cpus[1]
        pipe, hot, both = [], [], []
        for _ in range(reps):
            for k in KINDS:
                raw[k].append(rings[k].batch(n))
            if same_cpu:
                pipe.append(solo(0, n))
                hot.append(hot_read(ws, n))
                both.append(solo(ws, n))
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


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return len(W_QUICK if quick else W_FULL) + len(PLACEMENTS)


def run(
    quick: bool,
    tick: Tick,
    ws: tuple[int, ...] | None = None,
    reps: int | None = None,
    batch_s: float | None = None,
) -> dict[str, Any]:
    ws = ws or (W_QUICK if quick else W_FULL)
    reps = reps or (3 if quick else 15)
    batch_s = batch_s or (0.04 if quick else 0.25)
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
        "cold_thread": f"{cold['thread']:.1f}",
        "cold_process": f"{cold['process']:.1f}",
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
