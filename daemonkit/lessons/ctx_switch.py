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

How each claim is decided (the engine is :mod:`daemonkit.lessons.verdict`):

* C2 on the process/thread ratio of the per-switch cost at W=0 and at every *cache-resident*
  W (both working sets, 2W, fit the last-level cache whose size sysfs reports); larger W are
  shown and marked capacity-dominated: two working sets that overflow the cache miss with or
  without a switch. Bands: >= 2x holds ("far more"), 1.25x-2x partly, below 1.25x not.
* C3 on what a process switch adds *beyond the same reads without a switch*, over and above
  what a thread switch adds and over their difference at W=0, in units of one cached read of
  the set: at W = 256 KiB (:data:`W_CACHE`, both sets cache-resident) and at a page-strided
  working set (one cache line in each of 512 pages, so every page needs a TLB entry and
  little cache). A switch that left the caches or the TLB cold would add about one read or
  more. Bands: >= 1 holds, 0.25-1 partly, below 0.25 not; the two points combined.
* Points where the peers were preempted (below) do not decide.

Facts that keep the numbers honest:

* Each working set is private and really resident (see :mod:`daemonkit.lessons._ring`).
* The kernel counts the switches actually made (``getrusage(RUSAGE_THREAD)``, both sides):
  two per round trip, voluntary (the side blocked in ``read``) or involuntary (the woken
  reader preempted the writer before it blocked); fewer means some hop did not switch, and
  the per-switch figure is then not a switch cost.
* Every point is repeated, thread and process batches interleaved; the verdicts use the
  bootstrap interval of those repeats. More than about 2.2 counted switches per round trip
  means the peers were also preempted (a third task on the CPU): such points are flagged.
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
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

import numpy as np

from daemonkit.channels.base import PeerKind
from daemonkit.lessons import _perf
from daemonkit.lessons._ring import Ring, hot_read, pinned, rounds_per_batch, solo
from daemonkit.lessons.report import Table, Tick, spread
from daemonkit.lessons.text import Tr, fmt_ns, fmt_size
from daemonkit.lessons.verdict import (
    Arr,
    Bands,
    Decision,
    Label,
    Verdict,
    bootstrap,
    combine,
    paired_ratio,
)
from daemonkit.machine import CpuMode, facts, placement

__all__ = [
    "CLAIMS",
    "NAME",
    "Measurements",
    "explain_c2",
    "explain_c3",
    "run",
    "steps",
    "tables",
    "verdicts",
]

NAME = "ctx-switch"
CLAIMS = ("C2", "C3")

KiB, MiB = 1 << 10, 1 << 20
W_FULL = (0, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB)
W_QUICK = (0, 256 * KiB, 16 * MiB)
# C3's cache point: two such sets fit the L2 of most CPUs, so a switch that left the caches
# cold would show as a full re-read from further away. The same W in quick and full runs.
W_CACHE = 256 * KiB
PAGE = 4096
TLB_PAGES = 512  # the page-strided set: more pages than the L1 dTLB holds, fewer than the L2's
KINDS: tuple[PeerKind, ...] = ("thread", "process")
PLACEMENTS: tuple[CpuMode, ...] = ("same", "split", "none")
PERF_EVENTS = ("dTLB-load-misses", "cache-misses")

FAR_MORE = Bands(partly=1.25, holds=2.0)  # C2's "far more", as a process/thread ratio
MIN_SWITCHES = 1.8  # switches per round trip (both sides, both kinds) below which a hop did not
PREEMPTED = 2.2  # switches per round trip above which a third task also ran on the CPU
FITS = 1.5  # both sets read without a switch / two cached reads: above it, they spill
SLOWER = 2.0  # a read this much slower per byte than the sweep's fastest is not from cache
# C3: what a process switch adds beyond a thread switch (over their W=0 difference), in units
# of one cached read of the working set: a cold set costs at least about one more read.
REFILL = Bands(partly=0.25, holds=1.0)


class Measurements(TypedDict):
    """What ``run`` hands back (JSON data). A point (``sweep[i]``, ``tlb``, ``placement[i]``):
    ``w``, ``stride``, ``n``, the no-switch baselines (:class:`~daemonkit.lessons.report.Spread`
    ``pipe_alone_ns``, ``hot_read_ns``, ``same_work_ns``) and per kind (``thread``,
    ``process``) ``rtt_ns``, ``switch_ns``, ``beyond_same_work_ns``, ``switches_per_rtt``,
    ``voluntary_per_rtt`` and, where perf counts, ``perf_per_switch``."""

    cpu: int | None
    llc_bytes: int | None
    tlb_pages: int
    reps: int
    perf_events: list[str]
    perf_unavailable: str | None
    sweep: list[dict[str, Any]]
    tlb: NotRequired[dict[str, Any]]
    placement: list[dict[str, Any]]


def _measure(
    ws: int,
    cpus: tuple[int | None, int | None],
    reps: int,
    batch_s: float,
    perf: bool,
    stride: int = 1,
) -> dict[str, Any]:
    """Interleaved repeats of thread and process rings (and the solo baseline) at one W."""
    raw: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    out: dict[str, Any] = {"w": ws, "stride": stride}
    with pinned(cpus[0]), contextlib.ExitStack() as stack:
        # The process ring first: fork before the thread ring's thread exists.
        rings = {k: Ring(stack, k, ws, cpus[1], stride) for k in ("process", "thread")}
        n = min(rounds_per_batch(r, batch_s) for r in rings.values())
        same_cpu = cpus[0] == cpus[1]
        pipe, hot, both = [], [], []
        for _ in range(reps):
            for k in KINDS:
                raw[k].append(rings[k].batch(n))
            if same_cpu:
                pipe.append(solo(0, n))
                hot.append(hot_read(ws, n, stride))
                both.append(solo(ws, n, stride))
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
    return len(W_QUICK if quick else W_FULL) + 1 + len(PLACEMENTS)


def run(
    quick: bool,
    tick: Tick,
    ws: tuple[int, ...] | None = None,
    reps: int | None = None,
    batch_s: float | None = None,
) -> Measurements:
    ws = ws or (W_QUICK if quick else W_FULL)
    reps = reps or (11 if quick else 21)
    batch_s = batch_s or (0.015 if quick else 0.15)
    same = placement("same")
    perf_reason = _perf.probe(PERF_EVENTS)
    m: Measurements = {
        "cpu": same.client_cpu,
        "llc_bytes": facts()["llc_bytes"],  # for the table's capacity marks
        "tlb_pages": TLB_PAGES,
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
    cpus = (same.client_cpu, same.peer_cpu)
    m["tlb"] = _measure(TLB_PAGES * PAGE, cpus, reps, batch_s, perf_reason is None, PAGE)
    tick("step.ctx-switch.tlb")
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


def factors(m: Measurements) -> dict[str, float] | None:
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


def _counted(m: Measurements, below: float, above: float) -> list[str]:
    """The W whose counted switches per round trip (either kind) fall outside [below, above]."""
    return [
        _wname(r)
        for r in _points(m)
        if any(not below <= r[k]["switches_per_rtt"] <= above for k in KINDS)
    ]


def _points(m: Measurements) -> list[Mapping[str, Any]]:
    return [*m["sweep"], *([m["tlb"]] if m.get("tlb") else [])]


def _wname(r: Mapping[str, Any]) -> str:
    if r.get("stride", 1) > 1:
        return f"{r['w'] // r['stride']}×{fmt_size(r['stride'])}"
    return fmt_size(r["w"])


def fits(r: Mapping[str, Any], llc: int | None, fastest: float) -> bool:
    """Whether both working sets of point *r* stayed cached.

    Three conditions: 2W within the last-level cache that sysfs reports; one cached read of
    the set at no less than half the fastest per-byte speed of the sweep (*fastest*, ns per
    byte: a set read at memory speed is not cached, whatever the cache's size); and one
    thread reading both sets in turn (no switch) costing at most :data:`FITS` x two reads of
    one, so that the two sets fit together. A hypervisor may report the cache of a whole
    socket: the measured checks keep such a figure from calling a spilling set resident.
    """
    if r["w"] == 0:
        return True
    if llc is None or 2 * r["w"] > llc:
        return False
    hot = r["hot_read_ns"]["median"]
    both = r["same_work_ns"]["median"] - r["pipe_alone_ns"]["median"]
    return bool(hot / r["w"] <= SLOWER * fastest and both <= FITS * 2 * hot)


def fastest_read(m: Measurements) -> float:
    """The fastest cached read of the sweep, in ns per byte (inf without a non-zero W)."""
    return min(
        (r["hot_read_ns"]["median"] / r["w"] for r in m["sweep"] if r["w"] > 0),
        default=float("inf"),
    )


def resident(m: Measurements, llc: int | None) -> list[Mapping[str, Any]]:
    """Sweep points whose two working sets stay cached (:func:`fits`); W=0 always does."""
    fastest = fastest_read(m)
    return [r for r in m["sweep"] if fits(r, llc, fastest)]


def preempted(r: Mapping[str, Any]) -> bool:
    """More switches than the ring makes: another task ran between the hops."""
    return any(r[k]["switches_per_rtt"] > PREEMPTED for k in KINDS)


def deciding(m: Measurements, llc: int | None) -> list[Mapping[str, Any]]:
    """The points C2 is decided on: W=0, and every cache-resident W that was not preempted."""
    return [r for r in resident(m, llc) if r["w"] == 0 or not preempted(r)]


def _ratio(r: Mapping[str, Any], field: str) -> list[str]:
    """``[W, process/thread]``: a pair the text shows as "W: ratio" in the reader's language."""
    t, p = r["thread"][field]["median"], r["process"][field]["median"]
    return [_wname(r), f"{p / t:.2f}" if t > 0 and p > 0 else "n/a"]


def verdict_c2(m: Measurements, facts: Mapping[str, Any]) -> Verdict:
    llc = facts.get("llc_bytes")
    res = resident(m, llc)
    capacity = [r for r in m["sweep"] if r not in res]
    res = deciding(m, llc)
    # Thread and process batches alternate within each repeat: their ratio is taken per repeat.
    ci = paired_ratio(
        [(r["process"]["switch_ns"]["samples"], r["thread"]["switch_ns"]["samples"]) for r in res]
    )
    sizes = [fmt_size(r["w"]) for r in res]
    decision = Decision("c2", ci, FAR_MORE, (f"W = {sizes[0]}", *sizes[1:]))
    missing = _counted(m, MIN_SWITCHES, float("inf"))
    figures: dict[str, Any] = {
        "ratios": [_ratio(r, "switch_ns") for r in m["sweep"]],
        "resident": [fmt_size(r["w"]) for r in res],
        "capacity": [fmt_size(r["w"]) for r in capacity],
        "llc": fmt_size(llc) if llc else "?",
        "min_switches": MIN_SWITCHES,
        "max_switches": PREEMPTED,
        "missing": missing,
        "preempted": _counted(m, 0.0, PREEMPTED),
        "point": f"{ci.point:.2f}",
    }
    extra: list[str] = []
    if capacity:
        extra.append("verdict.ctx-switch.capacity")
    if figures["preempted"]:
        extra.append("verdict.ctx-switch.preempted")
    f = factors(m)
    if f is not None:
        figures.update({k: fmt_ns(v) for k, v in f.items()})
        bigger = f["placement_effect_ns"] > f["kind_effect_ns"]
        extra.append("verdict.ctx-switch.placement" if bigger else "verdict.ctx-switch.kind")
    label: Label = decision.label
    if missing:
        label = "inconclusive"
        extra.insert(0, "verdict.ctx-switch.missing")
    why = explain_c2(facts, decision)
    return Verdict(
        "C2",
        label,
        "verdict.ctx-switch",
        "threshold.ctx-switch",
        figures,
        tuple(extra),
        why,
        (decision,),
    )


def explain_c2(facts: Mapping[str, Any], d: Decision) -> tuple[str, ...]:
    """Why on this machine: each paragraph chosen by a condition on the facts and the interval."""
    why: list[str] = []
    if facts.get("pcid") and d.ci.hi < d.bands.partly:
        why.append("why.c2.pcid_equal")  # tagged TLB, and the numbers agree: no flush to pay
    elif facts.get("pcid") and d.ci.lo >= d.bands.partly:
        why.append("why.c2.pcid_more")  # tagged TLB, yet processes cost more: something else
    elif not facts.get("pcid") and d.ci.lo >= d.bands.partly:
        why.append("why.c2.flush")  # no tag: every address-space switch flushes the TLB
    if facts.get("kpti"):
        why.append("why.kpti")
    if facts.get("hypervisor"):
        why.append("why.vm")
    return tuple(why)


def refill(m: Measurements, r: Mapping[str, Any], where: tuple[str, ...]) -> Decision:
    """C3's quantity at point *r*: what the process switch added beyond the thread switch
    (per repeat, process minus thread: the two batches ran back to back), less the same
    difference at W=0, divided by one cached read of the set; with its bootstrap interval."""
    zero = m["sweep"][0]

    def gap(p: Mapping[str, Any]) -> list[float]:
        pairs = zip(
            p["process"]["beyond_same_work_ns"]["samples"],
            p["thread"]["beyond_same_work_ns"]["samples"],
            strict=True,
        )
        return [a - b for a, b in pairs]

    def stat(gap_w: Arr, gap_0: Arr, hot: Arr) -> Arr:
        g_w, g_0, h = (np.median(x, axis=1) for x in (gap_w, gap_0, hot))
        return np.asarray(np.where(h > 0, (g_w - g_0) / np.where(h > 0, h, 1), np.nan))

    groups = [gap(r), gap(zero), list(r["hot_read_ns"]["samples"])]
    return Decision("c3", bootstrap(groups, stat), REFILL, where)


def verdict_c3(m: Measurements, facts: Mapping[str, Any]) -> Verdict:
    llc = facts.get("llc_bytes")
    res = resident(m, llc)
    top = max((r for r in deciding(m, llc) if r["w"] <= W_CACHE), key=lambda r: int(r["w"]))
    tlb = m.get("tlb")
    decisions = []
    if top["w"] > 0:
        decisions.append(refill(m, top, (f"W = {fmt_size(top['w'])}",)))
    if tlb:
        decisions.append(refill(m, tlb, (f"W = {_wname(tlb)}",)))
    label: Label = combine(d.label for d in decisions) if decisions else "inconclusive"
    shown = [p for p in (top if top["w"] > 0 else None, tlb) if p]
    figures: dict[str, Any] = {
        "beyond": [
            [
                _wname(p),
                f"{fmt_ns(p['thread']['beyond_same_work_ns']['median'])} / "
                f"{fmt_ns(p['process']['beyond_same_work_ns']['median'])}",
            ]
            for p in [m["sweep"][0], *shown]
        ],
        "refill": [[*d.where, f"{d.ci.point:+.2f}"] for d in decisions],
        "hot": [[_wname(p), fmt_ns(p["hot_read_ns"]["median"])] for p in shown],
        "wres": fmt_size(top["w"]),
        "llc": fmt_size(llc) if llc else "?",
        "pages": m.get("tlb_pages", TLB_PAGES),
        "tlb_thread": fmt_ns(tlb["thread"]["beyond_same_work_ns"]["median"]) if tlb else "-",
        "tlb_process": fmt_ns(tlb["process"]["beyond_same_work_ns"]["median"]) if tlb else "-",
        "capacity": [fmt_size(r["w"]) for r in m["sweep"] if r not in res],
        "perf": m["perf_unavailable"] or "-",
    }
    extra: list[str] = []
    if m["perf_unavailable"]:
        extra.append("verdict.ctx-switch.perf_unavailable")
    else:
        per = {k: (tlb or top)[k].get("perf_per_switch", {}) for k in KINDS}
        figures["tlbm_thread"] = f"{per['thread'].get('dTLB-load-misses', 0):.0f}"
        figures["tlbm_process"] = f"{per['process'].get('dTLB-load-misses', 0):.0f}"
        extra.append("verdict.ctx-switch.perf")
    cache_d = decisions[0] if top["w"] > 0 and decisions else None
    tlb_d = decisions[-1] if tlb and decisions else None
    why = explain_c3(facts, cache_d, tlb_d, bool(figures["capacity"]))
    return Verdict(
        "C3",
        label,
        "verdict.ctx-switch.c3",
        "threshold.ctx-switch.c3",
        figures,
        tuple(extra),
        why,
        tuple(decisions),
    )


def explain_c3(
    facts: Mapping[str, Any], cache: Decision | None, tlb: Decision | None, capacity: bool
) -> tuple[str, ...]:
    """Why on this machine, for C3: each paragraph chosen by a condition on facts and intervals."""
    why: list[str] = []
    pcid = bool(facts.get("pcid"))
    if cache is not None and cache.ci.hi < cache.bands.partly:
        # The caches are tagged by physical address: nothing of the set was lost.
        why.append("why.c3.cache_warm")
    elif cache is not None and cache.ci.lo >= cache.bands.partly:
        why.append("why.c3.cache_cold")
    if tlb is not None and tlb.ci.hi < tlb.bands.partly:
        why.append("why.c3.tlb_warm" if pcid else "why.c3.tlb_kept")
    elif tlb is not None and tlb.ci.lo >= tlb.bands.partly:
        why.append("why.c3.tlb_pcid" if pcid else "why.c3.tlb_flush")
    if capacity:
        why.append("why.c3.capacity")  # larger sets overflow the cache, switch or not
    return tuple(why)


def verdicts(m: Measurements, facts: Mapping[str, Any]) -> list[Verdict]:
    return [verdict_c2(m, facts), verdict_c3(m, facts)]


# -- the terminal view -------------------------------------------------------------------


def _cell(s: dict[str, float]) -> str:
    return f"{fmt_ns(s['median'])} [{fmt_ns(s['q1'])}–{fmt_ns(s['q3'])}]"


def tables(m: Measurements, tr: Tr) -> list[Table]:
    rows = []
    llc = m.get("llc_bytes")
    for r in _points(m):
        t, p = r["thread"], r["process"]
        ts, ps = t["switch_ns"], p["switch_ns"]
        ratio = f"{ps['median'] / ts['median']:.2f}" if ts["median"] > 0 else "n/a"
        mark = ""
        if r.get("stride", 1) > 1:
            mark = " " + tr("cs.mark.tlb")
        elif not fits(r, llc, fastest_read(m)):
            mark = " " + tr("cs.mark.capacity")
        rows.append(
            [
                _wname(r) + mark,
                fmt_ns(r["pipe_alone_ns"]["median"] + 2 * r["hot_read_ns"]["median"]),
                _cell(ts),
                _cell(ps),
                ratio,
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
            [_wname(r)]
            + [
                f"{r[k].get('perf_per_switch', {}).get(e, 0):.0f}"
                for k in KINDS
                for e in PERF_EVENTS
            ]
            for r in _points(m)
        ]
        ecols = (
            "cs.col.tlb_thread",
            "cs.col.cache_thread",
            "cs.col.tlb_process",
            "cs.col.cache_process",
        )
        out.append(Table("cs.perf.title", ("cs.col.w", *ecols), perf_rows))
    return out


# -- this lesson's words, in both languages (the same keys; a test checks it) --------

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "claim.ctx-switch": "C2 (上下文切换的开销): a process switch costs far more than a "
        "thread switch. C3 (CPU Cache/TLB 不命中): after a switch the caches and TLB are cold, "
        "and that second cost is where the two differ.",
        "method.ctx-switch": "lmbench lat_ctx: a pipe token ring between two peers (threads, or "
        "processes) pinned to one CPU; each receiver reads a private working set of W bytes "
        "(memchr), and a page-strided set reads one byte in each of 512 pages. Per switch = "
        "(round trip - the same pipe calls in one thread - 2 x a read of a cached working set) / "
        "2; beyond same work = (round trip - one thread doing the pipe calls and reading both "
        "working sets) / 2. The kernel's count of switches is checked; each point is repeated "
        "and decided on its bootstrap interval. The W=0 ring also runs on two CPUs and unpinned.",
        "step.ctx-switch.w": "ctx-switch: one working-set size done",
        "step.ctx-switch.placement": "ctx-switch: one CPU placement done",
        "cs.sweep.title": "Per-switch cost by working set W, pinned to one CPU (median [q1–q3])",
        "cs.place.title": "Round trip at W=0 by CPU placement (median [q1–q3])",
        "cs.perf.title": "Hardware counters per switch",
        "cs.col.w": "W",
        "cs.col.base": "no-switch baseline",
        "cs.col.thread": "thread switch",
        "cs.col.process": "process switch",
        "cs.col.ratio": "process/thread",
        "cs.col.beyond": "beyond same work (t / p)",
        "cs.col.switches": "switches per round trip (t / p)",
        "cs.col.placement": "placement",
        "cs.col.rtt_thread": "threads",
        "cs.col.rtt_process": "processes",
        "cs.col.tlb_thread": "dTLB misses, thread",
        "cs.col.cache_thread": "cache misses, thread",
        "cs.col.tlb_process": "dTLB misses, process",
        "cs.col.cache_process": "cache misses, process",
        "cs.place.same": "one CPU (both pinned)",
        "cs.place.split": "two CPUs (split)",
        "cs.place.none": "unpinned",
        "verdict.ctx-switch": "Process/thread cost per switch by W: {ratios}. Decided at W = "
        "{resident}, where both working sets stay cached (2W within the {llc} last-level cache "
        "that sysfs reports, and read without a switch at cached speed).",
        "verdict.ctx-switch.placement": "CPU placement moved the round trip more "
        "({placement_effect_ns}) than thread versus process ({kind_effect_ns}).",
        "verdict.ctx-switch.kind": "Thread versus process moved the round trip more "
        "({kind_effect_ns}) than CPU placement ({placement_effect_ns}).",
        "verdict.ctx-switch.missing": "Fewer than {min_switches} switches per round trip were "
        "counted at {missing}: those hops did not all switch, so no per-switch cost is claimed.",
        "threshold.ctx-switch": "'far more' is read as the ratio of the costs; at least "
        "{min_switches} counted switches per round trip",
        "verdict.ctx-switch.c3": "What a switch costs beyond the same reads without a switch, "
        "thread / process: {beyond}. Over and above their difference at W=0, a process switch "
        "added, in cached reads of the set: {refill} (one cached read: {hot}).",
        "verdict.ctx-switch.perf_unavailable": "dTLB and cache miss counters are unavailable on "
        "this machine (perf: {perf}).",
        "verdict.ctx-switch.perf": "dTLB load misses per switch at the page-strided set: thread "
        "{tlbm_thread}, process {tlbm_process}.",
        "threshold.ctx-switch.c3": "a switch that left the caches or the TLB cold would add "
        "about one read of the working set or more; decided at the largest cache-resident W and "
        "at the page-strided set, both alike give that label, different labels give partly holds",
        "q.c2": "process/thread cost per switch (geometric mean over the cache-resident W)",
        "q.c3": "extra refill after a process switch, in cached reads of the set",
        "step.ctx-switch.tlb": "ctx-switch: page-strided working set done",
        "cs.mark.capacity": "(capacity-dominated)",
        "cs.mark.tlb": "(page-strided)",
        "verdict.ctx-switch.capacity": "At W = {capacity} the two working sets do not stay "
        "cached: those points are capacity-dominated and do not decide.",
        "verdict.ctx-switch.preempted": "More than {max_switches} switches per round trip at "
        "{preempted}: another task preempted the peers there.",
        "why.c2.pcid_equal": "This CPU has PCID: since Linux 4.14 every TLB entry carries the id "
        "of its address space, so loading another process's page tables does not flush the TLB, "
        "and the caches are tagged by physical address, so they survive the switch as well. What "
        "a switch does cost (entering the kernel, the scheduler, saving registers) is the same "
        "for threads and processes. The note describes CPUs that flushed the TLB on every "
        "address-space switch.",
        "why.c2.pcid_more": "This CPU has PCID, so the TLB is not flushed, yet a process switch "
        "costs more here: what remains is loading another page-table root (CR3) and switching "
        "the memory-management context, which a thread switch skips.",
        "why.c2.flush": "This CPU has no PCID: every switch to another address space flushes the "
        "TLB, and the process then refills it page by page, which is the cost the note describes.",
        "why.c3.capacity": "At W = {capacity} the cost grows for threads and processes alike, "
        "switch or no switch: the working sets are no longer read at cached speed, whatever the "
        "{llc} last-level cache that sysfs reports, so those points measure the cache's "
        "capacity, not the switch.",
        "why.c3.cache_warm": "The caches stay warm: they are tagged by physical address, so a "
        "process switch invalidates nothing, and both working sets of {wres} still fit the cache "
        "when the peer runs again.",
        "why.c3.cache_cold": "After a process switch part of the {wres} working set had to be "
        "fetched again, more than after a thread switch.",
        "why.c3.tlb_warm": "The TLB stays warm too: with PCID (Linux >= 4.14) each address space "
        "keeps its own tagged entries, so loading the other process's page tables flushes "
        "nothing and the {pages} pages need no page walk afterwards.",
        "why.c3.tlb_kept": "The TLB kept the entries although this CPU has no PCID: the pages "
        "were walked again faster than the interval could show.",
        "why.c3.tlb_pcid": "The page-strided set costs a process switch more ({tlb_process} "
        "against {tlb_thread}) although PCID keeps the TLB from being flushed: TLB entries are "
        "per address space, so two processes need their own entries for everything they touch, "
        "the interpreter's code and data included, where two threads share one set; what no "
        "longer fits is walked again, and in a virtual machine a page walk crosses two levels of "
        "page tables.",
        "why.c3.tlb_flush": "This CPU has no PCID, so every process switch flushes the TLB and "
        "each of the {pages} pages needs a page walk again: the refill the note describes.",
    },
    "zh": {
        "claim.ctx-switch": "C2（上下文切换的开销）：进程切换的开销远远大于线程切换。C3（CPU "
        "Cache/TLB 不命中）：切换后缓存和 TLB 失效，两者的差异体现在这第二项开销上。",
        "method.ctx-switch": "lmbench 的 lat_ctx 方法：两个绑定在同一 CPU 上的对端（线程或进程）"
        "通过管道来回传递令牌；每个接收方读取自己私有的 W 字节工作集（memchr），另有一个按页跨步"
        "的工作集，在 512 个页中各读 1 字节。单次切换开销 =（往返时间 − 单个线程完成同样管道调用"
        "的时间 − 2 × 缓存命中时读一遍工作集的时间）÷ 2；超出同样工作的开销 =（往返时间 − 单个线"
        "程完成管道调用并读两个工作集的时间）÷ 2。核对内核统计的切换次数；每个点重复测量，按其自"
        "助法（bootstrap）置信区间下结论。W=0 的令牌环另外在两个 CPU 上和不绑核时各运行一次。",
        "step.ctx-switch.w": "ctx-switch：完成一个工作集大小",
        "step.ctx-switch.placement": "ctx-switch：完成一种绑核方式",
        "cs.sweep.title": "按工作集 W 的每次切换开销，绑定在一个 CPU 上（中位数 [q1–q3]）",
        "cs.place.title": "W=0 时不同绑核方式下的往返时间（中位数 [q1–q3]）",
        "cs.perf.title": "每次切换的硬件计数",
        "cs.col.w": "W",
        "cs.col.base": "无切换基准",
        "cs.col.thread": "线程切换",
        "cs.col.process": "进程切换",
        "cs.col.ratio": "进程/线程",
        "cs.col.beyond": "超出同样工作的开销（线程 / 进程）",
        "cs.col.switches": "每次往返的切换次数（线程 / 进程）",
        "cs.col.placement": "绑核方式",
        "cs.col.rtt_thread": "线程",
        "cs.col.rtt_process": "进程",
        "cs.col.tlb_thread": "dTLB 未命中（线程）",
        "cs.col.cache_thread": "缓存未命中（线程）",
        "cs.col.tlb_process": "dTLB 未命中（进程）",
        "cs.col.cache_process": "缓存未命中（进程）",
        "cs.place.same": "同一 CPU（两端都绑核）",
        "cs.place.split": "两个 CPU（分开绑核）",
        "cs.place.none": "不绑核",
        "verdict.ctx-switch": "各 W 下进程与线程单次切换开销之比：{ratios}。判定依据为 W = "
        "{resident}，此时两个工作集都留在缓存中（2W 不超过 sysfs 报告的 {llc} 末级缓存，且无切换"
        "时读取仍是缓存命中的速度）。",
        "verdict.ctx-switch.placement": "绑核方式对往返时间的影响（{placement_effect_ns}）大于线"
        "程与进程之别（{kind_effect_ns}）。",
        "verdict.ctx-switch.kind": "线程与进程之别对往返时间的影响（{kind_effect_ns}）大于绑核方"
        "式（{placement_effect_ns}）。",
        "verdict.ctx-switch.missing": "在 {missing} 处统计到的每次往返切换次数少于 "
        "{min_switches}：这些传递并非每次都发生了切换，因此不给出单次切换开销。",
        "threshold.ctx-switch": "“远远大于”按两者开销之比判断；每次往返至少统计到 {min_switches} "
        "次切换",
        "verdict.ctx-switch.c3": "切换在“无切换的同样读取”之外多出的开销（线程 / 进程）："
        "{beyond}。扣除 W=0 时两者已有的差别后，进程切换多出的开销折合缓存命中时读一遍工作集的次"
        "数：{refill}（缓存命中时读一遍：{hot}）。",
        "verdict.ctx-switch.perf_unavailable": "本机无法使用 dTLB 和缓存未命中计数器（perf："
        "{perf}）。",
        "verdict.ctx-switch.perf": "按页跨步的工作集上每次切换的 dTLB 加载未命中：线程 "
        "{tlbm_thread}，进程 {tlbm_process}。",
        "threshold.ctx-switch.c3": "若切换让缓存或 TLB 变“冷”，就会多出约一遍或更多的工作集读取；"
        "在缓存放得下的最大 W 和按页跨步的工作集上分别判定，两者结论相同即为该结论，不同则为部分"
        "成立",
        "q.c2": "进程与线程单次切换开销之比（缓存放得下的各个 W 的几何平均）",
        "q.c3": "进程切换后多出的重新填充开销（以缓存命中时读一遍工作集为单位）",
        "step.ctx-switch.tlb": "ctx-switch：按页跨步的工作集完成",
        "cs.mark.capacity": "（受缓存容量支配）",
        "cs.mark.tlb": "（按页跨步）",
        "verdict.ctx-switch.capacity": "W = {capacity} 时两个工作集无法都留在缓存中：这些点受缓存"
        "容量支配，不参与判定。",
        "verdict.ctx-switch.preempted": "在 {preempted} 处每次往返的切换超过 {max_switches} 次："
        "有其他任务抢占了对端。",
        "why.c2.pcid_equal": "本机 CPU 支持 PCID：自 Linux 4.14 起，每个 TLB 表项都带有所属地址空"
        "间的标识，加载另一个进程的页表不会清空 TLB；缓存按物理地址标记，切换后同样保留。切换真正"
        "的开销（进入内核、调度、保存寄存器）对线程和进程是一样的。笔记描述的是每次切换地址空间都"
        "要清空 TLB 的 CPU。",
        "why.c2.pcid_more": "本机 CPU 支持 PCID，TLB 不会被清空，但进程切换在这里仍然更贵：剩下的"
        "差别是加载另一个页表根（CR3）并切换内存管理上下文，线程切换则省去了这些。",
        "why.c2.flush": "本机 CPU 不支持 PCID：每次切换到另一个地址空间都会清空 TLB，进程随后要逐"
        "页重新填充，这正是笔记所说的开销。",
        "why.c3.capacity": "W = {capacity} 时，无论线程还是进程、有无切换，开销都会增长：不管 "
        "sysfs 报告的末级缓存有 {llc}，这些工作集都已不能以缓存命中的速度读取，所以这些点测的是缓"
        "存容量，而不是切换。",
        "why.c3.cache_warm": "缓存保持“热”：缓存按物理地址标记，进程切换不会使其失效，两个 "
        "{wres} 的工作集在对端再次运行时仍在缓存中。",
        "why.c3.cache_cold": "进程切换后，{wres} 的工作集有一部分需要重新取回，比线程切换后多。",
        "why.c3.tlb_warm": "TLB 同样保持“热”：有了 PCID（Linux 4.14 起），每个地址空间保留自己带"
        "标记的表项，加载另一个进程的页表不会清空任何东西，之后访问这 {pages} 个页也不需要重新查"
        "页表。",
        "why.c3.tlb_kept": "尽管本机 CPU 不支持 PCID，TLB 表项看起来仍然保留了下来：重新查页表的"
        "开销小到区间无法分辨。",
        "why.c3.tlb_pcid": "按页跨步的工作集让进程切换多付了开销（{tlb_process}，线程为 "
        "{tlb_thread}），尽管 PCID 使 TLB 不会被清空：TLB 表项按地址空间区分，两个进程访问的一切"
        "（包括解释器的代码和数据）都要各占一份表项，而两个线程共用一份；放不下的部分要重新查页"
        "表，而在虚拟机中一次查页表要经过两级页表。",
        "why.c3.tlb_flush": "本机 CPU 不支持 PCID，每次进程切换都会清空 TLB，{pages} 个页都要重新"
        "查页表：这正是笔记所说的重新填充。",
    },
}
