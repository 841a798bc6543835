"""Every verdict function, fed synthetic measurements on both sides of its threshold.

The verdicts are pure functions of plain data, so these tests need no processes: they prove
that each label can be reached, that the threshold really decides it, and that the printed
threshold and sentence can be filled in both languages from the figures the verdict carries.
"""

from __future__ import annotations

import string
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
from daemonkit.lessons.report import Verdict
from daemonkit.lessons.text import EN, ZH


def _labels(vs: list[Verdict]) -> list[str]:
    for v in vs:  # every verdict must render in both languages from its own figures
        for lang in ("en", "zh"):
            r = v.render(lang)
            assert r["text"] and r["threshold"] and r["label"] == v.label
    return [v.label for v in vs]


# -- the string tables -------------------------------------------------------------------


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_en_and_zh_cover_the_same_keys_with_the_same_placeholders() -> None:
    assert set(EN) == set(ZH)
    for key in EN:
        assert _fields(EN[key]) == _fields(ZH[key]), key
        assert ZH[key].strip(), key


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
    assert _labels(address_space.verdicts(_c1())) == ["holds"]
    # 0.9 faults per written page is the copy-on-write threshold: 95 - 5 = 90 is on it.
    assert _labels(address_space.verdicts(_c1(child_write__write_faults=95))) == ["holds"]
    assert _labels(address_space.verdicts(_c1(child_write__write_faults=94))) == ["partly holds"]
    broken = _c1(
        thread_write__main_reads=0,
        child_write__parent_sees=100,
        child_write__write_faults=0,
        fd_close__open_after_thread_close=True,
    )
    assert _labels(address_space.verdicts(broken)) == ["does not hold"]


# -- C2 and C3 ---------------------------------------------------------------------------


def _s(median: float, noise: float = 0.05) -> dict[str, float]:
    lo, hi = median * (1 - noise), median * (1 + noise)
    return {"median": median, "q1": lo, "q3": hi, "min": lo * 0.5, "max": hi * 2, "n": 5}


def _c2(
    thread: list[float],
    process: list[float],
    switches: float = 2.0,
    place: tuple[float, float, float] = (10e3, 10e3, 10e3),
) -> dict[str, Any]:
    ws = [0, 1 << 20, 16 << 20][: len(thread)]
    sweep = [
        {
            "w": w,
            "thread": {"switch_ns": _s(t), "switches_per_rtt": switches},
            "process": {"switch_ns": _s(p), "switches_per_rtt": switches},
        }
        for w, t, p in zip(ws, thread, process, strict=True)
    ]
    placement = [
        {"placement": name, "thread": {"rtt_ns": _s(rtt)}, "process": {"rtt_ns": _s(rtt + 1e3)}}
        for name, rtt in zip(("same", "split", "none"), place, strict=True)
    ]
    return {"sweep": sweep, "placement": placement, "perf_unavailable": "<not supported>"}


def test_c2_far_more_threshold() -> None:
    v = ctx_switch.verdict_c2
    assert v(_c2([1000, 2000], [2100, 4200])).label == "holds"  # 2.1 at every W
    assert v(_c2([1000, 2000], [1900, 4200])).label == "partly holds"  # 1.9 at W=0
    assert v(_c2([1000, 2000], [1300, 2600])).label == "partly holds"  # more, not far more
    assert v(_c2([1000, 2000], [1020, 2010])).label == "does not hold"  # within noise
    assert v(_c2([1000, 2000], [900, 1800])).label == "does not hold"  # threads dearer


def test_c2_switches_that_did_not_happen_make_it_inconclusive() -> None:
    assert ctx_switch.verdict_c2(_c2([1000], [3000], switches=2.0)).label == "holds"
    m = _c2([1000], [3000], switches=1.0)
    v = ctx_switch.verdict_c2(m)
    assert v.label == "inconclusive"
    assert "verdict.ctx-switch.missing" in v.extra


def test_c2_says_which_factor_moved_the_number_more() -> None:
    placed = ctx_switch.verdict_c2(_c2([1000], [1200], place=(10e3, 30e3, 12e3)))
    assert "verdict.ctx-switch.placement" in placed.extra
    kind = ctx_switch.verdict_c2(_c2([1000], [1200], place=(10e3, 10.1e3, 10.2e3)))
    assert "verdict.ctx-switch.kind" in kind.extra


def test_c3_cold_caches_and_where_the_difference_lies() -> None:
    v = ctx_switch.verdict_c3
    # Both grow 2x or more from W=0; the process's growth is >= 1.5x the thread's: holds.
    assert v(_c2([1000, 3000], [1000, 5000])).label == "holds"
    # Both grow alike: caches are cold after any switch, but that is not the difference.
    assert v(_c2([1000, 3000], [1000, 3100])).label == "partly holds"
    # Growth below 2x and no gap: does not hold.
    assert v(_c2([1000, 1900], [1000, 1900])).label == "does not hold"
    m = _c2([1000, 3000], [1000, 5000])
    assert "verdict.ctx-switch.perf_unavailable" in v(m).extra


# -- C3b ---------------------------------------------------------------------------------


def _q(median: float) -> dict[str, float]:
    return {"median": median, "p10": median * 0.9, "p90": median * 1.1, "n": 10}


def _c3b(thread: float, fork: float, exec_: float, spawn: float) -> dict[str, Any]:
    size = {
        "thread": _q(thread),
        "fork": _q(fork),
        "fork+exec": _q(exec_),
        "posix_spawn": _q(spawn),
    }
    return {"sizes": [{"rss": 20 << 20, **size}, {"rss": 1044 << 20, **size}]}


def test_c3b_threshold() -> None:
    assert _labels(creation.verdicts(_c3b(100, 160, 300, 155))) == ["holds"]
    assert _labels(creation.verdicts(_c3b(100, 160, 300, 140))) == ["partly holds"]
    assert _labels(creation.verdicts(_c3b(100, 140, 145, 120))) == ["does not hold"]


# -- C4 ----------------------------------------------------------------------------------


def _c4(thread: list[float], process: list[float]) -> dict[str, Any]:
    sizes = [0, 4096]

    def route(name: str, group: str, rtts: list[float]) -> dict[str, Any]:
        points = [{"size": s, "rtt_ns": _s(r)} for s, r in zip(sizes, rtts, strict=True)]
        return {"channel": name, "peer": "x", "group": group, "payload": True, "points": points}

    routes = [route("th-queue", "thread", thread), route("pipe", "process", process)]
    # A notification-only route moves no bytes: however fast, it does not compete.
    routes.append(
        {
            "channel": "th-condition",
            "peer": "thread",
            "group": "thread",
            "payload": False,
            "points": [{"size": 0, "rtt_ns": _s(1.0)}],
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
    return {"sizes": sizes, "routes": routes}


def test_c4_threshold() -> None:
    assert _labels(communication.verdicts(_c4([10e3, 10e3], [16e3, 30e3]))) == ["holds"]
    assert _labels(communication.verdicts(_c4([10e3, 10e3], [14e3, 30e3]))) == ["partly holds"]
    assert _labels(communication.verdicts(_c4([10e3, 10e3], [9e3, 14e3]))) == ["does not hold"]


def test_c4_without_thread_channels_is_inconclusive() -> None:
    m = _c4([10e3, 10e3], [16e3, 30e3])
    m["routes"][0]["points"] = [{"size": s, "error": "ImportError: x"} for s in m["sizes"]]
    assert _labels(communication.verdicts(m)) == ["inconclusive"]


# -- C5 ----------------------------------------------------------------------------------


def _c5(waits: int = 1000, std: int = 1, rt: int = 1000, order: bool = True) -> dict[str, Any]:
    return {
        "k": 1000,
        "sem_posts": 1000,
        "sem_waits": waits,
        "standard_sent": 1000,
        "standard_delivered": std,
        "realtime_sent": 1000,
        "realtime_delivered": rt,
        "realtime_in_order": order,
    }


def test_c5_threshold() -> None:
    assert _labels(semaphore_vs_signal.verdicts(_c5())) == ["holds"]
    assert _labels(semaphore_vs_signal.verdicts(_c5(std=999))) == ["holds"]
    assert _labels(semaphore_vs_signal.verdicts(_c5(std=1000))) == ["partly holds"]
    assert _labels(semaphore_vs_signal.verdicts(_c5(rt=999))) == ["partly holds"]
    assert _labels(semaphore_vs_signal.verdicts(_c5(order=False))) == ["partly holds"]
    bad = _c5(waits=999, std=1000, order=False)
    assert _labels(semaphore_vs_signal.verdicts(bad)) == ["does not hold"]


# -- C6 ----------------------------------------------------------------------------------


def _proc(pid: int, sid: int, tty: str) -> dict[str, Any]:
    return {"pid": pid, "ppid": 1, "pgid": sid, "sid": sid, "tty": tty}


@pytest.mark.parametrize(
    ("job_gone", "alive", "daemon_sid", "tty", "label"),
    [
        (True, True, 50, "-", "holds"),
        (False, True, 50, "-", "partly holds"),  # the job survived too: no contrast shown
        (True, True, 51, "-", "partly holds"),  # a session leader: could get a tty again
        (True, True, 50, "pts/3", "partly holds"),
        (True, False, 50, "-", "does not hold"),
    ],
)
def test_c6_threshold(job_gone: bool, alive: bool, daemon_sid: int, tty: str, label: str) -> None:
    m = {
        "started": True,
        "job_gone": job_gone,
        "daemon_alive": alive,
        "shell_signal": "SIGHUP",
        "before": {"shell": _proc(10, 10, "pts/3"), "daemon": _proc(51, daemon_sid, tty)},
    }
    assert _labels(daemon.verdicts(m)) == [label]


def test_c6_daemon_that_did_not_start_is_inconclusive() -> None:
    m = {"started": False, "start_rc": 1, "start_message": "daemonkit: no such command"}
    assert _labels(daemon.verdicts(m)) == ["inconclusive"]
