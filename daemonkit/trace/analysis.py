"""From the scheduler's events to per-round-trip figures and a few round trips' timeline.

Every figure is counted from the events recorded during the timed loop (the client's own
first and last timestamps bound it) and divided by the number of round trips it ran:

* **switches**: each time a CPU switched *away from* the client or the peer thread, split
  as getrusage(2) splits them (``prev_state`` R: preempted, involuntary; else voluntary),
  and set beside the getrusage counts of the same loop: the kernel counts both, so they
  must agree (within :data:`AGREE_WITHIN`);
* **wake-up latency**: from ``sched_waking`` of the client or peer to the moment a CPU
  switches to it, with whether the woken side's CPU was idle at that moment (an idle CPU
  has to be woken itself: an inter-processor interrupt and an exit from the idle loop);
* **run slices**: each side's turns on a CPU, from being switched in to being switched out:
  the time one side runs per hop;
* **run time** of each side, **idle** time of each CPU, time **other** tasks ran there;
* **futex sleeps**: the side was switched out inside a futex wait: it slept on a lock. Where
  the futex word lives names the lock (from /proc/PID/maps): in the interpreter's own data
  (libpython's, where CPython keeps the GIL's mutex and condition variable) it is the GIL; in
  memory shared between processes (/dev/shm) a POSIX semaphore of the channel; on the heap
  any other lock (Python's thread locks, those of the ``th-*`` channels).

*Kernel path*: none: pure functions of the events. *Lifetime*: plain values.
*See also*: :mod:`daemonkit.trace.events`, getrusage(2), sched(7).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from daemonkit.trace.capture import Capture
from daemonkit.trace.events import FutexWait, Lost, Switch, Wake

__all__ = ["AGREE_WITHIN", "TIMELINE_ROUND_TRIPS", "TYPICAL", "analyse", "lock_kind", "role_of"]

AGREE_WITHIN = 0.10  # trace and getrusage switch counts: relative difference allowed
TIMELINE_ROUND_TRIPS = 3
TYPICAL = (0.75, 1.5)  # a typical stretch of k round trips lasts this many times k p50


@dataclass(frozen=True)
class Segment:
    """*tid* ran on *cpu* from *start* to *end* (ns, CLOCK_MONOTONIC)."""

    cpu: int
    start: int
    end: int
    tid: int
    comm: str


def role_of(tid: int, c: Capture) -> str:
    """``client``, ``peer``, ``thread`` (another thread of either side), ``idle`` or ``other``."""
    if tid == c.client_tid:
        return "client"
    if tid == c.peer_tid:
        return "peer"
    if tid in c.threads:
        return "thread"
    return "idle" if tid == 0 else "other"


def _segments(switches: Sequence[Switch], first_ts: int, last_ts: int) -> dict[int, list[Segment]]:
    """Per CPU, who ran from when to when, from the switches (the first one tells who ran
    before it)."""
    out: dict[int, list[Segment]] = defaultdict(list)
    current: dict[int, tuple[int, int, str]] = {}
    for s in switches:
        start, tid, comm = current.get(s.cpu, (first_ts, s.prev_pid, s.prev_comm))
        if s.ts > start:
            out[s.cpu].append(Segment(s.cpu, start, s.ts, tid, comm))
        current[s.cpu] = (s.ts, s.next_pid, s.next_comm)
    for cpu, (start, tid, comm) in current.items():
        if last_ts > start:
            out[cpu].append(Segment(cpu, start, last_ts, tid, comm))
    return out


def _overlap(seg: Segment, lo: int, hi: int) -> int:
    return max(0, min(seg.end, hi) - max(seg.start, lo))


def _pct(values: Sequence[int], q: float) -> int | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _dist(values: Sequence[int]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ns": _pct(values, 0.50),
        "p99_ns": _pct(values, 0.99),
        "mean_ns": round(sum(values) / len(values)) if values else None,
    }


class _Index:
    """Lookups over the events: who runs on a CPU at an instant, when a thread runs next."""

    def __init__(self, c: Capture) -> None:
        self.switches = [e for e in c.events if isinstance(e, Switch)]
        first = c.events[0].ts if c.events else c.start_ns
        last = c.events[-1].ts if c.events else c.end_ns
        self.segments = _segments(self.switches, first, last)
        self._starts = {cpu: [s.start for s in segs] for cpu, segs in self.segments.items()}
        self.ins: dict[int, list[int]] = defaultdict(list)
        self.outs: dict[int, list[int]] = defaultdict(list)
        for s in self.switches:
            self.ins[s.next_pid].append(s.ts)
            self.outs[s.prev_pid].append(s.ts)

    def running(self, cpu: int, ts: int) -> int | None:
        """The thread on *cpu* at *ts* (None: unknown, before the first event there)."""
        starts = self._starts.get(cpu)
        if not starts:
            return None
        i = bisect.bisect_right(starts, ts) - 1
        seg = self.segments[cpu][i] if i >= 0 else None
        return seg.tid if seg is not None and seg.start <= ts < seg.end else None

    def next_in(self, tid: int, ts: int) -> int | None:
        """When a CPU next switches to *tid* at or after *ts*, if it was asleep at *ts*."""
        ins, outs = self.ins.get(tid, []), self.outs.get(tid, [])
        i, o = bisect.bisect_right(ins, ts) - 1, bisect.bisect_right(outs, ts) - 1
        last_in = ins[i] if i >= 0 else -1
        last_out = outs[o] if o >= 0 else -1
        if last_in > last_out:  # running already: this wake-up found it awake
            return None
        j = bisect.bisect_left(ins, ts)
        return ins[j] if j < len(ins) else None


def _switches(c: Capture, lo: int, hi: int) -> dict[str, Any]:
    n = c.round_trips
    trace = {}
    for role, tid in (("client", c.client_tid), ("peer", c.peer_tid)):
        outs = [
            s for s in c.events if isinstance(s, Switch) and s.prev_pid == tid and lo <= s.ts <= hi
        ]
        invol = sum(1 for s in outs if s.preempted)
        trace[role] = {
            "voluntary": round((len(outs) - invol) / n, 4),
            "involuntary": round(invol / n, 4),
            "total": round(len(outs) / n, 4),
        }
    peer_n = n + 1  # the peer's counts cover one more echo (the untimed first round trip)
    rusage = {
        "client": {
            "voluntary": round(c.client_rusage.voluntary / n, 4),
            "involuntary": round(c.client_rusage.involuntary / n, 4),
            "total": round((c.client_rusage.voluntary + c.client_rusage.involuntary) / n, 4),
        },
        "peer": {
            "voluntary": round(c.peer_rusage.voluntary / peer_n, 4),
            "involuntary": round(c.peer_rusage.involuntary / peer_n, 4),
            "total": round((c.peer_rusage.voluntary + c.peer_rusage.involuntary) / peer_n, 4),
        },
    }
    t_total = trace["client"]["total"] + trace["peer"]["total"]
    r_total = rusage["client"]["total"] + rusage["peer"]["total"]
    diff = abs(t_total - r_total) / r_total if r_total else (0.0 if t_total == 0 else 1.0)
    return {
        "trace": {**trace, "total": round(t_total, 4)},
        "getrusage": {**rusage, "total": round(r_total, 4)},
        "agreement": {
            "difference": round(diff, 4),
            "within": AGREE_WITHIN,
            "agree": diff <= AGREE_WITHIN,
        },
    }


def _wakeups(c: Capture, ix: _Index, lo: int, hi: int) -> dict[str, Any]:
    """Wake-up latency per direction, share found on an idle CPU."""
    wakes = [
        e
        for e in c.events
        if isinstance(e, Wake)
        and e.kind == "waking"
        and lo <= e.ts <= hi
        and e.woken in (c.client_tid, c.peer_tid)
    ]
    out: dict[str, Any] = {}
    for name, woken in (("to_peer", c.peer_tid), ("to_client", c.client_tid)):
        lat, idle, remote = [], 0, 0
        for w in (w for w in wakes if w.woken == woken):
            ran = ix.next_in(woken, w.ts)
            if ran is None:
                continue
            lat.append(ran - w.ts)
            idle += ix.running(w.target_cpu, w.ts) == 0
            remote += w.target_cpu != w.cpu
        out[name] = {
            **_dist(lat),
            "per_round_trip": round(len(lat) / c.round_trips, 4),
            "on_idle_cpu": round(idle / len(lat), 4) if lat else None,
            "other_cpu": round(remote / len(lat), 4) if lat else None,
        }
    every = [ix.next_in(w.woken, w.ts) for w in wakes]
    lat_all = [r - w.ts for w, r in zip(wakes, every, strict=True) if r is not None]
    out["all"] = {**_dist(lat_all), "per_round_trip": round(len(lat_all) / c.round_trips, 4)}
    return out


def _slices(c: Capture, ix: _Index, lo: int, hi: int) -> dict[str, Any]:
    """Each side's turns on a CPU: from being switched in to being switched out."""
    out = {}
    for role, tid in (("client", c.client_tid), ("peer", c.peer_tid)):
        runs = [
            s.end - s.start
            for segs in ix.segments.values()
            for s in segs
            if s.tid == tid and lo <= s.start and s.end <= hi
        ]
        out[role] = {**_dist(runs), "per_round_trip": round(len(runs) / c.round_trips, 4)}
    return out


def _cpu_time(c: Capture, ix: _Index, lo: int, hi: int) -> dict[str, Any]:
    n = c.round_trips
    by_role: Counter[str] = Counter()
    idle: Counter[int] = Counter()
    others: Counter[str] = Counter()
    used = {
        seg.cpu
        for segs in ix.segments.values()
        for seg in segs
        if seg.tid in (c.client_tid, c.peer_tid) and _overlap(seg, lo, hi)
    }
    for cpu in sorted(used):
        for seg in ix.segments[cpu]:
            t = _overlap(seg, lo, hi)
            if not t:
                continue
            role = role_of(seg.tid, c)
            by_role[role] += t
            if role == "idle":
                idle[cpu] += t
            elif role == "other":
                others[seg.comm] += t
    return {
        "cpus": sorted(used),
        "run_ns_per_round_trip": {
            r: round(by_role[r] / n) for r in ("client", "peer", "thread", "other", "idle")
        },
        "idle_ns_per_round_trip": {str(cpu): round(idle[cpu] / n) for cpu in sorted(used)},
        "other_tasks": [
            {"comm": comm, "ns_per_round_trip": round(t / n)} for comm, t in others.most_common(5)
        ],
    }


def lock_kind(addr: int, regions: Sequence[tuple[int, int, str]]) -> str:
    """``gil`` (in the interpreter's own data), ``shared`` (memory shared between processes:
    a POSIX semaphore) or ``other`` (the heap: e.g. a Python thread lock)."""
    for lo, hi, kind in regions:
        if lo <= addr < hi:
            return "gil" if kind == "interpreter" else kind
    return "other"


def _futex_sleeps(c: Capture, lo: int, hi: int) -> dict[str, Any]:
    """Switches away from a side while it was inside a futex wait (it slept on a lock), by
    where the futex word lives: the interpreter lock's, a semaphore in shared memory, other."""
    waiting: dict[int, int | None] = {}
    sides = {c.client_tid: "client", c.peer_tid: "peer"}
    count: Counter[tuple[str, str]] = Counter()
    for e in c.events:
        if isinstance(e, FutexWait):
            waiting[e.tid] = None if e.done else e.uaddr
        elif isinstance(e, Switch) and lo <= e.ts <= hi and not e.preempted:
            side, addr = sides.get(e.prev_pid), waiting.get(e.prev_pid)
            if side is not None and addr is not None:
                count[side, lock_kind(addr, c.regions.get(side, []))] += 1
    n = c.round_trips
    out: dict[str, Any] = {
        side: {k: round(count[side, k] / n, 4) for k in ("gil", "shared", "other")}
        for side in ("client", "peer")
    }
    out["total"] = round(sum(count.values()) / n, 4)
    out["gil"] = round((count["client", "gil"] + count["peer", "gil"]) / n, 4)
    return out


def _from_the_middle(count: int) -> Iterator[int]:
    """0 .. count-1, the middle one first, then outwards (later before earlier)."""
    mid = (count - 1) // 2
    for d in range(count):
        for i in (mid + d, mid - d) if d else (mid,):
            if 0 <= i < count:
                yield i


def _lost_spans(c: Capture) -> list[tuple[int, int]]:
    """Where perf lost events: from the CPU's last event before each ``LOST`` record to it."""
    spans, last = [], dict[int, int]()
    for e in c.events:
        if isinstance(e, Lost):
            spans.append((last.get(e.cpu, c.start_ns), e.ts))
        last[e.cpu] = e.ts
    return spans


def _window(c: Capture) -> tuple[int, int, bool, bool]:
    """The round trips the timeline shows: (index of the first, how many, typical?, lost?).

    The client's own timed round trips choose the window: round trip *i* began at
    ``starts[i]`` and lasted ``samples[i]`` on its clock, which is the events' clock. So the
    window holds exactly k round trips the client timed: the client ran at both of its edges
    and the peer ran in between (it echoed every message). Of the stretches of k consecutive
    round trips, from the middle of the loop outwards, the first that lasted
    :data:`TYPICAL` x k p50 round trips is shown: a typical stretch, not a stall. Where there
    is none (other tasks held the CPUs in nearly every round trip), the stretch whose length
    is nearest k p50 round trips is shown, and ``typical`` says that it is not typical. A
    stretch where perf lost events (its lanes could miss switches) is shown only if every
    one is such, and ``lost`` says so.
    """
    n = len(c.samples)
    k = min(TIMELINE_ROUND_TRIPS, n)
    median = k * (_pct(c.samples, 0.5) or 1)
    lo, hi = TYPICAL

    def span(i: int) -> int:  # from the first round trip's start to the last one's end
        return c.starts[i + k - 1] + c.samples[i + k - 1] - c.starts[i]

    gaps = _lost_spans(c)

    def lost(i: int) -> bool:
        a, b = c.starts[i], c.starts[i] + span(i)
        return any(g0 < b and a < g1 for g0, g1 in gaps)

    order = list(_from_the_middle(n - k + 1))
    clean = [i for i in order if not lost(i)] if gaps else order
    for i in clean:
        if lo * median <= span(i) <= hi * median:
            return i, k, True, False
    nearest = min(clean or order, key=lambda i: abs(math.log(max(1, span(i)) / median)))
    return nearest, k, lo * median <= span(nearest) <= hi * median, not clean


def _timeline(c: Capture, ix: _Index) -> dict[str, Any]:
    """k consecutive round trips the client timed, from the middle of the loop: per CPU who
    ran (lanes), the wake-ups (arrows), where each round trip began."""
    first, k, typical, lost = _window(c)
    lo = c.starts[first]
    hi = c.starts[first + k - 1] + c.samples[first + k - 1]
    arrows = []
    for w in c.events:
        if not (isinstance(w, Wake) and w.kind == "waking" and lo <= w.ts < hi):
            continue
        if role_of(w.woken, c) in ("other", "idle") and role_of(w.waker, c) in ("other", "idle"):
            continue  # wake-ups among other tasks are not the story
        ran = ix.next_in(w.woken, w.ts)
        arrows.append(
            {
                "ts": w.ts - lo,
                "waker": role_of(w.waker, c),
                "waker_tid": w.waker,
                "woken": role_of(w.woken, c),
                "woken_tid": w.woken,
                "woken_comm": w.woken_comm,
                "cpu": w.cpu,
                "target_cpu": w.target_cpu,
                "ran_ts": ran - lo if ran is not None and ran < hi else None,
            }
        )
    # Lanes for the CPUs the story happens on: where a side ran, woke or was woken in the
    # window (unpinned on a large machine, not every CPU the recorder saw).
    shown = {a["cpu"] for a in arrows} | {a["target_cpu"] for a in arrows}
    lanes: dict[str, list[list[Any]]] = {}
    held: Counter[str] = Counter()
    for cpu in sorted(ix.segments):
        lane: list[list[Any]] = [
            [max(s.start, lo) - lo, min(s.end, hi) - lo, role_of(s.tid, c), s.tid, s.comm]
            for s in ix.segments[cpu]
            if _overlap(s, lo, hi)
        ]
        if lane and (
            cpu in shown or any(r in ("client", "peer", "thread") for _, _, r, _, _ in lane)
        ):
            lanes[str(cpu)] = lane
            for start, end, role, _, _ in lane:
                held[role] += end - start
    lane_time = sum(held.values())
    return {
        "round_trips": k,
        "first": first,  # index of the first round trip shown, from 0
        "starts_ns": [c.starts[i] - lo for i in range(first, first + k)],
        "round_trip_ns": c.samples[first : first + k],
        "typical": typical,
        "typical_range": list(TYPICAL),  # of k p50 round trips
        "events_lost": lost,  # perf lost events inside the window: lanes may miss switches
        "span_ns": hi - lo,
        "others_share": round(held["other"] / lane_time, 4) if lane_time else 0.0,
        "lanes": lanes,
        "wakeups": arrows,
    }


def analyse(c: Capture) -> dict[str, Any]:
    """The figures of one traced case, ready for the JSON document."""
    ix = _Index(c)
    lo, hi = c.start_ns, c.end_ns
    return {
        "channel": c.channel,
        "peer": c.peer,
        "cpu": c.cpu,
        "size": c.size,
        "round_trips": c.round_trips,
        "pinning": {"client": c.client_cpus, "peer": c.peer_cpus},
        "tids": {"client": c.client_tid, "peer": c.peer_tid, "threads": c.threads},
        "latency_ns": _dist(c.samples)
        | {"wall_ns_per_round_trip": round((hi - lo) / c.round_trips)},
        "events": len(c.events),
        "lost_events": c.lost_events,
        "switches_per_round_trip": _switches(c, lo, hi),
        "wakeups": _wakeups(c, ix, lo, hi),
        "run_slices": _slices(c, ix, lo, hi),
        "cpu_time": _cpu_time(c, ix, lo, hi),
        "futex_sleeps_per_round_trip": _futex_sleeps(c, lo, hi),
        "timeline": _timeline(c, ix),
    }
