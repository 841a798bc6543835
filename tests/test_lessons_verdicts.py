"""Every verdict function and every "why on this machine" condition, on synthetic numbers.

The verdicts are pure functions of the measurements and the machine facts, so these tests need
no processes: they prove that each label can be reached (on both sides of each band boundary,
and "inconclusive" when the interval straddles one), that each explanation is chosen by its
condition and not otherwise, and that every sentence renders in both languages.
"""

from __future__ import annotations

from typing import Any

import pytest

from daemonkit.lessons import (
    address_space,
    communication,
    creation,
    ctx_switch,
    daemon,
    semaphore_vs_signal,
)
from daemonkit.lessons.render import render_verdict
from daemonkit.lessons.verdict import Decision, Interval, Verdict

KiB, MiB = 1 << 10, 1 << 20
PCID = {"pcid": True, "kpti": False, "hypervisor": False, "llc_bytes": 32 * MiB, "gil": True}
NO_PCID = {**PCID, "pcid": False}


def _labels(vs: list[Verdict]) -> list[str]:
    for v in vs:  # every verdict must render in both languages from its own figures
        for lang in ("en", "zh"):
            r = render_verdict(v.as_json(), lang)
            assert r["text"] and r["threshold"] and r["label"] == v.label
            assert bool(r["interval"]) == bool(v.decisions)
    return [v.label for v in vs]


def _reps(median: float, rel: float = 0.01, n: int = 7) -> list[float]:
    return [median * (1 + rel * (i - n // 2)) for i in range(n)]


def _sp(median: float, rel: float = 0.01) -> dict[str, Any]:
    r = _reps(median, rel)
    return {
        "median": median,
        "q1": r[2],
        "q3": r[4],
        "min": r[0],
        "max": r[-1],
        "n": 7,
        "samples": r,
    }


def _d(lo: float, hi: float, bands: Any) -> Decision:
    return Decision("q", Interval((lo + hi) / 2, lo, hi, 7), bands)


# -- C1 ----------------------------------------------------------------------------------


def _c1(**change: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "ids": {
            "pid": 100,
            "main_tid": 100,
            "threads": [{"tid": 101, "pid": 100}, {"tid": 102, "pid": 100}],
            "task": [100, 101, 102],
            "child": {"pid": 200, "tid": 200, "task": [200]},
        },
        "thread_write": {"written": 42, "main_reads": 42},
        "child_write": {
            "pages": 100,
            "read_faults": 5,
            "write_faults": 105,
            "child_sees": 100,
            "parent_sees": 0,
        },
        "fd_close": {"open_after_thread_close": False, "open_after_child_close": True},
    }
    for path, value in change.items():
        *head, last = path.split("__")
        d = m
        for k in head:
            d = d[k]
        d[last] = value
    return m


def test_c1_threshold() -> None:
    v = address_space.verdicts
    assert _labels(v(_c1(), PCID)) == ["holds"]
    # 0.9 faults per written page is the copy-on-write threshold: 95 - 5 = 90 is on it.
    assert _labels(v(_c1(child_write__write_faults=95), PCID)) == ["holds"]
    assert _labels(v(_c1(child_write__write_faults=94), PCID)) == ["partly holds"]
    assert v(_c1(), PCID)[0].why == ("why.c1.cow",)
    assert v(_c1(child_write__write_faults=94), PCID)[0].why == ()
    assert "verdict.failed" in v(_c1(child_write__write_faults=94), PCID)[0].extra
    assert "verdict.failed" not in v(_c1(), PCID)[0].extra
    broken = _c1(
        thread_write__main_reads=0,
        child_write__parent_sees=100,
        child_write__write_faults=0,
        fd_close__open_after_thread_close=True,
    )
    assert _labels(address_space.verdicts(broken, PCID)) == ["does not hold"]


# -- C2 and C3 ---------------------------------------------------------------------------


def _pt(
    w: int,
    t: float,
    p: float,
    *,
    bt: float | None = None,
    bp: float | None = None,
    hot: float = 1000.0,
    both: float | None = None,
    switches: float = 2.0,
    stride: int = 1,
    rel: float = 0.01,
) -> dict[str, Any]:
    """One point of the sweep: per-switch costs t, p; beyond-same-work bt, bp; a hot read.

    The process's repeats run opposite to the thread's (its fastest repeat beside the thread's
    slowest), so *rel* spreads the per-repeat ratios and differences, not only the levels.
    """

    def kind(s: float, b: float, flip: bool) -> dict[str, Any]:
        out = {
            "switch_ns": _sp(s, rel),
            "beyond_same_work_ns": _sp(b, rel),
            "rtt_ns": _sp(2 * s + 5000),
            "switches_per_rtt": switches,
        }
        if flip:
            for k in ("switch_ns", "beyond_same_work_ns"):
                out[k]["samples"] = out[k]["samples"][::-1]
        return out

    return {
        "w": w,
        "stride": stride,
        "pipe_alone_ns": _sp(3000.0),
        "hot_read_ns": _sp(hot),
        "same_work_ns": _sp(3000.0 + (2 * hot if both is None else both)),
        "thread": kind(t, t if bt is None else bt, False),
        "process": kind(p, p if bp is None else bp, True),
    }


def _cs(sweep: list[dict[str, Any]], tlb: dict[str, Any] | None = None, **kw: Any) -> dict:
    place = kw.get("place", (10e3, 10e3, 10e3))
    placement = [
        {"placement": name, "thread": {"rtt_ns": _sp(rtt)}, "process": {"rtt_ns": _sp(rtt + 1e3)}}
        for name, rtt in zip(("same", "split", "none"), place, strict=True)
    ]
    return {
        "sweep": sweep,
        "tlb": tlb,
        "tlb_pages": 512,
        "placement": placement,
        "perf_unavailable": "<not supported>",
        "llc_bytes": 32 * MiB,
    }


def _c2(ratio: float, rel: float = 0.01, **kw: Any) -> dict[str, Any]:
    return _cs(
        [_pt(0, 1000, 1000 * ratio, rel=rel), _pt(256 * KiB, 1500, 1500 * ratio, rel=rel)], **kw
    )


@pytest.mark.parametrize(
    ("ratio", "rel", "label"),
    [
        (2.2, 0.01, "holds"),
        (1.9, 0.01, "partly holds"),
        (1.35, 0.01, "partly holds"),
        (1.15, 0.01, "does not hold"),
        (0.5, 0.01, "does not hold"),  # threads dearer
        (2.0, 0.08, "inconclusive"),  # noisy repeats straddle 2.0
        (1.25, 0.08, "inconclusive"),  # and 1.25
    ],
)
def test_c2_far_more_bands(ratio: float, rel: float, label: str) -> None:
    v = ctx_switch.verdict_c2(_c2(ratio, rel), PCID)
    assert _labels([v]) == [label]
    assert v.decisions[0].bands == ctx_switch.FAR_MORE


def test_c2_switches_that_did_not_happen_make_it_inconclusive() -> None:
    m = _cs([_pt(0, 1000, 3000, switches=1.0)])
    v = ctx_switch.verdict_c2(m, PCID)
    assert v.label == "inconclusive" and "verdict.ctx-switch.missing" in v.extra


def test_c2_capacity_dominated_and_preempted_points_do_not_decide() -> None:
    big = _pt(16 * MiB, 1000, 9000)  # 2W fits 32 MiB, but: see below
    m = _cs([_pt(0, 1000, 2500), big])
    assert ctx_switch.verdict_c2(m, PCID).label == "holds"  # 2.5 and 9: both far more
    spilled = _cs([_pt(0, 1000, 2500), _pt(16 * MiB, 1000, 9000, both=5000.0)])
    v = ctx_switch.verdict_c2(spilled, PCID)  # both sets read without a switch: 2.5x a hot read
    assert "verdict.ctx-switch.capacity" in v.extra and v.figures["capacity"] == ["16 MiB"]
    # Read at a quarter of the sweep's fastest cached speed: from memory, not from a cache.
    slow = _cs(
        [_pt(0, 1000, 2500), _pt(256 * KiB, 1000, 2500), _pt(1 * MiB, 1000, 1100, hot=16000.0)]
    )
    assert ctx_switch.verdict_c2(slow, PCID).figures["capacity"] == ["1 MiB"]
    assert ctx_switch.verdict_c2(slow, PCID).label == "holds"  # 1.1 at 1 MiB does not decide
    fast = _cs(
        [_pt(0, 1000, 2500), _pt(256 * KiB, 1000, 2500), _pt(1 * MiB, 1000, 1100, hot=6000.0)]
    )
    assert ctx_switch.verdict_c2(fast, PCID).figures["capacity"] == []
    small_llc = ctx_switch.verdict_c2(m, {**PCID, "llc_bytes": 16 * MiB})
    assert small_llc.figures["capacity"] == ["16 MiB"]  # 2W > LLC from sysfs
    preempted = _cs([_pt(0, 1000, 2500), _pt(1 * MiB, 1000, 1100, switches=2.6)])
    v = ctx_switch.verdict_c2(preempted, PCID)
    assert v.label == "holds" and "verdict.ctx-switch.preempted" in v.extra
    assert v.figures["preempted"] == ["1 MiB"]
    assert "verdict.ctx-switch.preempted" not in ctx_switch.verdict_c2(m, PCID).extra


def test_c2_says_which_factor_moved_the_number_more() -> None:
    placed = ctx_switch.verdict_c2(_c2(1.2, place=(10e3, 30e3, 12e3)), PCID)
    assert "verdict.ctx-switch.placement" in placed.extra
    kind = ctx_switch.verdict_c2(_c2(1.2, place=(10e3, 10.1e3, 10.2e3)), PCID)
    assert "verdict.ctx-switch.kind" in kind.extra


def test_c2_explanations_each_on_both_sides() -> None:
    bands = ctx_switch.FAR_MORE
    equal, more = _d(0.9, 1.2, bands), _d(1.3, 1.6, bands)
    e = ctx_switch.explain_c2
    assert "why.c2.pcid_equal" in e(PCID, equal)
    assert "why.c2.pcid_equal" not in e(PCID, more) + e(NO_PCID, equal)
    assert "why.c2.pcid_more" in e(PCID, more)
    assert "why.c2.pcid_more" not in e(PCID, equal) + e(NO_PCID, more)
    assert "why.c2.flush" in e(NO_PCID, more)
    assert "why.c2.flush" not in e(NO_PCID, equal) + e(PCID, more)
    assert "why.kpti" in e({**PCID, "kpti": True}, equal) and "why.kpti" not in e(PCID, equal)
    assert "why.vm" in e({**PCID, "hypervisor": True}, equal) and "why.vm" not in e(PCID, equal)


def _c3(cache_refill: float, tlb_refill: float, rel: float = 0.01) -> dict[str, Any]:
    """Refills in cached reads of the set: the process adds that much beyond the thread."""
    zero = _pt(0, 700, 950, bt=700, bp=950, rel=rel)
    hot = 2000.0
    cache = _pt(256 * KiB, 1000, 1250, bt=1000, bp=1250 + cache_refill * hot, hot=hot, rel=rel)
    tlb = _pt(
        512 * 4096, 900, 1150, bt=900, bp=1150 + tlb_refill * hot, hot=hot, stride=4096, rel=rel
    )
    return _cs([zero, cache], tlb)


@pytest.mark.parametrize(
    ("cache", "tlb", "label"),
    [
        (0.05, 0.05, "does not hold"),
        (0.05, 0.5, "partly holds"),  # the TLB part partly, the cache part not: partly
        (1.5, 1.5, "holds"),
        (0.5, 0.5, "partly holds"),
        (0.05, 1.5, "partly holds"),
    ],
)
def test_c3_refill_bands(cache: float, tlb: float, label: str) -> None:
    v = ctx_switch.verdict_c3(_c3(cache, tlb), PCID)
    assert _labels([v]) == [label]
    assert [d.where for d in v.decisions] == [("W = 256 KiB",), ("W = 512×4 KiB",)]


def test_c3_straddling_refill_is_inconclusive() -> None:
    v = ctx_switch.verdict_c3(_c3(1.0, 0.05, rel=0.2), PCID)
    assert v.label == "inconclusive"
    assert v.decisions[0].straddles is not None
    assert "verdict.ctx-switch.perf_unavailable" in v.extra


def test_c3_explanations_each_on_both_sides() -> None:
    b = ctx_switch.REFILL
    warm, cold = _d(-0.1, 0.2, b), _d(0.5, 1.5, b)
    e = ctx_switch.explain_c3
    assert "why.c3.cache_warm" in e(PCID, warm, None, False)
    assert "why.c3.cache_warm" not in e(PCID, cold, None, False)
    assert "why.c3.cache_cold" in e(PCID, cold, None, False)
    assert "why.c3.cache_cold" not in e(PCID, warm, None, False)
    assert "why.c3.tlb_warm" in e(PCID, None, warm, False)
    assert "why.c3.tlb_warm" not in e(NO_PCID, None, warm, False) + e(PCID, None, cold, False)
    assert "why.c3.tlb_kept" in e(NO_PCID, None, warm, False)
    assert "why.c3.tlb_kept" not in e(PCID, None, warm, False)
    assert "why.c3.tlb_pcid" in e(PCID, None, cold, False)
    assert "why.c3.tlb_pcid" not in e(NO_PCID, None, cold, False) + e(PCID, None, warm, False)
    assert "why.c3.tlb_flush" in e(NO_PCID, None, cold, False)
    assert "why.c3.tlb_flush" not in e(PCID, None, cold, False)
    assert "why.c3.capacity" in e(PCID, warm, warm, True)
    assert "why.c3.capacity" not in e(PCID, warm, warm, False)


# -- C3b ---------------------------------------------------------------------------------


def _q(median: float, rel: float = 0.01) -> dict[str, Any]:
    r = _reps(median, rel)
    return {"median": median, "p10": r[1], "p90": r[-2], "n": 7, "samples": r}


def _c3b(
    thread: float, proc: float, growth: float = 3.0, spawn_growth: float = 1.0, rel: float = 0.01
) -> dict[str, Any]:
    def size(rss: int, f: float, g: float) -> dict[str, Any]:
        return {
            "rss": rss,
            "thread": _q(thread, rel),
            "fork": _q(proc * f, rel),
            "fork+exec": _q(proc * f, rel),
            "posix_spawn": _q(proc * g, rel),
        }

    return {"sizes": [size(32 * MiB, 1.0, 1.0), size(1024 * MiB, growth, spawn_growth)]}


@pytest.mark.parametrize(
    ("proc", "growth", "rel", "label"),
    [
        (160, 1.0, 0.01, "holds"),
        (140, 1.0, 0.01, "partly holds"),
        (105, 1.0, 0.01, "does not hold"),
        (150, 1.0, 0.1, "inconclusive"),  # straddles 1.5
    ],
)
def test_c3b_bands(proc: float, growth: float, rel: float, label: str) -> None:
    assert _labels(creation.verdicts(_c3b(100, proc, growth, rel=rel), PCID)) == [label]


def test_c3b_explanations_each_on_both_sides() -> None:
    e = creation.explain
    assert e(_c3b(100, 200, growth=3.0)) == ("why.c3b.pagetables", "why.c3b.spawn")
    assert e(_c3b(100, 200, growth=3.0, spawn_growth=3.0)) == ("why.c3b.pagetables",)
    assert e(_c3b(100, 200, growth=1.2)) == ("why.c3b.flat",)


# -- C4 ----------------------------------------------------------------------------------


def _c4(
    thread: list[float], process: list[float], rel: float = 0.01, shm: bool = False
) -> dict[str, Any]:
    sizes = [0, 4096, 1 << 20][: len(thread)]

    def route(name: str, group: str, rtts: list[float]) -> dict[str, Any]:
        points = [{"size": s, "rtt_ns": _sp(r, rel)} for s, r in zip(sizes, rtts, strict=True)]
        return {"channel": name, "peer": "x", "group": group, "payload": True, "points": points}

    routes = [
        route("th-queue", "thread", thread),
        route("posix-shm" if shm else "pipe", "shm" if shm else "process", process),
    ]
    # A notification-only route moves no bytes: however fast, it does not compete.
    routes.append(
        {
            "channel": "th-condition",
            "peer": "thread",
            "group": "thread",
            "payload": False,
            "points": [{"size": 0, "rtt_ns": _sp(1.0)}],
        }
    )
    routes.append(
        {
            "channel": "zmq-ipc",
            "peer": "process",
            "group": "process",
            "payload": None,
            "points": [{"size": s, "error": "ImportError: missing"} for s in sizes],
        }
    )
    split = [{"channel": "pipe", "peer": "process", "size": 0, "rtt_ns": _sp(50e3)}]
    return {"sizes": sizes, "routes": routes, "split": split}


@pytest.mark.parametrize(
    ("process", "rel", "label"),
    [
        ([16e3, 30e3], 0.01, "holds"),  # 1.6 and 3.0
        ([12e3, 30e3], 0.01, "partly holds"),  # 1.2 (partly) and 3.0 (holds): they differ
        ([12e3, 13e3], 0.01, "partly holds"),  # both partly
        ([9e3, 10.5e3], 0.01, "does not hold"),
        ([15e3, 30e3], 0.1, "inconclusive"),  # straddles 1.5 at the smallest size
    ],
)
def test_c4_bands(process: list[float], rel: float, label: str) -> None:
    v = communication.verdicts(_c4([10e3, 10e3], process, rel), PCID)
    assert _labels(v) == [label]
    assert "verdict.communication.split" in v[0].extra


def test_c4_without_thread_channels_is_inconclusive() -> None:
    m = _c4([10e3, 10e3], [16e3, 30e3])
    m["routes"][0]["points"] = [{"size": s, "error": "ImportError: x"} for s in m["sizes"]]
    assert _labels(communication.verdicts(m, PCID)) == ["inconclusive"]


def test_c4_explanations_each_on_both_sides() -> None:
    def why(
        thread: list[float], process: list[float], facts: dict[str, Any] = PCID, shm: bool = False
    ) -> tuple[str, ...]:
        m = _c4(thread, process, shm=shm)
        return communication.explain(m, facts, communication.decisions(m))

    slower = why([10e3, 10e3], [5e3, 30e3])  # threads slower at 0 B, cheaper at 4 KiB
    assert "why.c4.gil" in slower and "why.c4.copy" in slower
    assert "why.c4.slower" in why([10e3, 10e3], [5e3, 30e3], {**PCID, "gil": False})
    equal = why([10e3, 10e3], [10.5e3, 10.5e3])
    assert not {"why.c4.gil", "why.c4.slower", "why.c4.copy"} & set(equal)
    assert "why.c4.shm" in why([10e3, 10e3], [5e3, 30e3], shm=True)
    assert "why.c4.shm" not in slower


# -- C5 ----------------------------------------------------------------------------------


def _c5(
    waits: int = 1000,
    std: int = 1,
    rt: int = 1000,
    order: bool = True,
    lost: int = 30,
    lost_locked: int = 0,
    signal_ns: float = 3400.0,
) -> dict[str, Any]:
    return {
        "k": 1000,
        "sem_posts": 1000,
        "sem_waits": waits,
        "standard_sent": 1000,
        "standard_delivered": std,
        "realtime_sent": 1000,
        "realtime_delivered": rt,
        "realtime_in_order": order,
        "handoff_rtt_ns": {"semaphore": _sp(2000.0), "signal": _sp(signal_ns)},
        "mutex": {
            "workers": 4,
            "increments": 100,
            "total": 400,
            "lost_unlocked": lost,
            "lost_locked": lost_locked,
        },
    }


def test_c5_threshold() -> None:
    v = semaphore_vs_signal.verdicts
    assert _labels(v(_c5(), PCID)) == ["holds"]
    assert _labels(v(_c5(std=999), PCID)) == ["holds"]
    assert _labels(v(_c5(std=1000), PCID)) == ["partly holds"]
    assert _labels(v(_c5(rt=999), PCID)) == ["partly holds"]
    assert _labels(v(_c5(order=False), PCID)) == ["partly holds"]
    assert _labels(v(_c5(lost=0), PCID)) == ["holds"]  # no race this time: not the claim
    assert _labels(v(_c5(lost_locked=1), PCID)) == ["does not hold"]  # the semaphore failed
    assert _labels(v(_c5(waits=999), PCID)) == ["does not hold"]  # the counter lost a post


def test_c5_explanations_each_on_both_sides() -> None:
    e = semaphore_vs_signal.explain

    def why(**kw: Any) -> tuple[str, ...]:
        m = _c5(**kw)
        return e(m, semaphore_vs_signal.handoff_ratio(m))

    assert "why.c5.coalesce" in why() and "why.c5.coalesce" not in why(std=1000)
    assert "why.c5.race" in why() and "why.c5.race" not in why(lost=0)
    assert "why.c5.no_race" in why(lost=0) and "why.c5.no_race" not in why()
    assert "why.c5.signal_slower" in why() and "why.c5.signal_slower" not in why(signal_ns=2000)
    assert "why.c5.semaphore_slower" in why(signal_ns=1000)
    assert "why.c5.semaphore_slower" not in why() + why(signal_ns=2000)


# -- C6 ----------------------------------------------------------------------------------


def _proc(pid: int, sid: int, tty: str, ppid: int = 1) -> dict[str, Any]:
    return {"pid": pid, "ppid": ppid, "pgid": sid, "sid": sid, "tty": tty}


def _parent(ppid: int = 1, container: bool = False, subreaper: bool = False) -> dict[str, Any]:
    return {
        "ppid": ppid,
        "comm": "systemd" if ppid != 1 else "init",
        "is_init": ppid == 1,
        "init_comm": "init",
        "container": container,
        "subreaper": subreaper,
    }


def _c6(
    job_gone: bool = True,
    alive: bool = True,
    daemon_sid: int = 50,
    tty: str = "-",
    parent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    parent = parent or _parent()
    return {
        "started": True,
        "job_gone": job_gone,
        "daemon_alive": alive,
        "shell_signal": "SIGHUP",
        "before": {
            "shell": _proc(10, 10, "pts/3"),
            "daemon": _proc(51, daemon_sid, tty, parent["ppid"]),
        },
        "parent": parent,
    }


@pytest.mark.parametrize(
    ("kw", "label"),
    [
        ({}, "holds"),
        ({"job_gone": False}, "partly holds"),  # the job survived too: no contrast shown
        ({"daemon_sid": 51}, "partly holds"),  # a session leader: could get a tty again
        ({"tty": "pts/3"}, "partly holds"),
        ({"parent": _parent(900, subreaper=True)}, "partly holds"),  # adopted by a subreaper
        ({"alive": False}, "does not hold"),
    ],
)
def test_c6_threshold(kw: dict[str, Any], label: str) -> None:
    assert _labels(daemon.verdicts(_c6(**kw), PCID)) == [label]


def test_c6_sentence_follows_what_happened() -> None:
    lived = daemon.verdicts(_c6(), PCID)[0]
    died = daemon.verdicts(_c6(alive=False), PCID)[0]
    assert lived.text == "verdict.daemon.survived" and died.text == "verdict.daemon.died"
    assert "verdict.failed" not in lived.extra and "verdict.failed" in died.extra
    assert "verdict.daemon.parent_init" in lived.extra
    other = daemon.verdicts(_c6(parent=_parent(900, subreaper=True)), PCID)[0]
    assert "verdict.daemon.parent_other" in other.extra
    assert "(not as predicted: -)" not in render_verdict(lived.as_json(), "en")["text"]


def test_c6_explanations_each_on_both_sides() -> None:
    def why(**kw: Any) -> tuple[str, ...]:
        m = _c6(**kw)
        return daemon.explain(m, m["parent"])

    assert "why.c6.container_init" in why(parent=_parent(container=True))
    assert "why.c6.container_init" not in why()
    assert "why.c6.init" in why() and "why.c6.init" not in why(parent=_parent(container=True))
    assert "why.c6.subreaper" in why(parent=_parent(900, subreaper=True))
    assert "why.c6.subreaper" not in why(parent=_parent(900)) + why()
    assert "why.c6.other_parent" in why(parent=_parent(900))
    assert "why.c6.other_parent" not in why(parent=_parent(900, subreaper=True))
    assert "why.c6.second_fork" in why() and "why.c6.second_fork" not in why(daemon_sid=51)


def test_c6_daemon_that_did_not_start_is_inconclusive() -> None:
    m = {"started": False, "start_rc": 1, "start_message": "daemonkit: no such command"}
    assert _labels(daemon.verdicts(m, PCID)) == ["inconclusive"]
