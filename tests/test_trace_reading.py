"""The trace's reading: each condition says what was computed, on either side of its threshold.

The reading is a pure function of the figures (no kernel involved), so each condition is
checked here with the figures just below and just above its threshold: the sentence flips,
the threshold is stated, and nothing is said that the figures do not hold.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from daemonkit.trace.reading import (
    EXTRA_SWITCHES,
    GIL_SLEEPS,
    OTHERS_MATTER,
    WAKE_DOMINATES,
    read,
)


def case(peer: str = "process", cpu: str = "same", **over: Any) -> dict[str, Any]:
    """The figures of one traced case, as analysis writes them: one switch per side, 1 µs
    wake-ups, a 10 µs round trip, nothing else on the CPU."""
    side = {"voluntary": 1.0, "involuntary": 0.0, "total": 1.0}
    wake = {
        "count": 2000,
        "p50_ns": 1000,
        "p99_ns": 5000,
        "per_round_trip": 1.0,
        "on_idle_cpu": 0.0,
        "other_cpu": 0.0,
    }
    c: dict[str, Any] = {
        "channel": "pipe",
        "peer": peer,
        "cpu": cpu,
        "latency_ns": {"p50_ns": 10_000, "wall_ns_per_round_trip": 10_000},
        "switches_per_round_trip": {
            "trace": {"client": dict(side), "peer": dict(side), "total": 2.0},
            "getrusage": {"client": dict(side), "peer": dict(side), "total": 2.0},
            "agreement": {"difference": 0.0, "within": 0.1, "agree": True},
        },
        "wakeups": {
            "to_peer": dict(wake),
            "to_client": dict(wake),
            "all": {**wake, "per_round_trip": 2.0},
        },
        "cpu_time": {
            "cpus": [0],
            "run_ns_per_round_trip": {"client": 4000, "peer": 4000, "other": 0, "idle": 0},
            "other_tasks": [],
        },
        "futex_sleeps_per_round_trip": {"total": 0.0, "gil": 0.0},
    }
    for path, value in over.items():
        *keys, last = path.split("__")
        holder = c
        for k in keys:
            holder = holder[k]
        holder[last] = value
    return c


def finding(cases: list[dict[str, Any]], condition: str) -> dict[str, Any]:
    found, paragraph = read(cases)
    (f,) = [f for f in found if f["condition"] == condition]
    assert f["text"] in paragraph and f["threshold"]
    return f


@pytest.mark.parametrize("p50", [2400, 2600])  # 2 wake-ups in a 10 µs round trip: 48 %, 52 %
def test_wake_share_either_side(p50: int) -> None:
    f = finding([case(wakeups__all__p50_ns=p50)], "wake_share")
    assert f["holds"] == (2 * p50 / 10_000 >= WAKE_DOMINATES)
    assert ("the wake-ups dominate" in f["text"]) == f["holds"]
    assert ("goes to running the two sides" in f["text"]) != f["holds"]


@pytest.mark.parametrize("idle", [0.4, 0.9])
def test_idle_wake_either_side_only_across_cpus(idle: float) -> None:
    c = case(cpu="split")
    for k in ("to_peer", "to_client"):
        c["wakeups"][k].update(other_cpu=1.0, on_idle_cpu=idle)
    f = finding([c], "idle_wake")
    assert f["holds"] == (idle >= 0.5)
    assert ("had to be woken itself" in f["text"]) == f["holds"]
    found, _ = read([case()])  # one CPU: no wake-up crossed CPUs, nothing to say
    assert not [x for x in found if x["condition"] == "idle_wake"]


def test_thread_switches_and_the_gil_either_side() -> None:
    process = case()
    more = copy.deepcopy(case(peer="thread"))
    more["switches_per_round_trip"]["trace"]["total"] = 2.0 * (1 + EXTRA_SWITCHES) + 0.01
    more["futex_sleeps_per_round_trip"] = {"total": 2.5, "gil": 2.0}
    f = finding([process, more], "thread_switches")
    assert f["holds"] and "extra per round trip" in f["text"]
    g = finding([process, more], "gil")
    assert g["holds"] and "2.00 switches per round trip were sleeps on the interpreter" in g["text"]
    assert "0.50 on other locks" in g["text"]

    same = case(peer="thread")
    same["futex_sleeps_per_round_trip"] = {"total": 0.0, "gil": GIL_SLEEPS / 2}
    assert not finding([process, same], "thread_switches")["holds"]
    g = finding([process, same], "gil")
    assert not g["holds"] and "found it free" in g["text"]


@pytest.mark.parametrize("other", [500, 2000])  # of a 10 µs round trip on one CPU: 5 %, 20 %
def test_other_tasks_either_side(other: int) -> None:
    f = finding([case(cpu_time__run_ns_per_round_trip__other=other)], "others")
    assert f["holds"] == (other / 10_000 >= OTHERS_MATTER)


@pytest.mark.parametrize(("getrusage", "agree"), [(2.1, True), (2.5, False)])
def test_agreement_either_side(getrusage: float, agree: bool) -> None:
    c = case()
    sw = c["switches_per_round_trip"]
    sw["getrusage"]["total"] = getrusage
    sw["agreement"]["difference"] = abs(2.0 - getrusage) / getrusage
    f = finding([c], "agreement")
    assert f["holds"] is agree
    assert ("agree with getrusage" in f["text"]) is agree


@pytest.mark.parametrize("involuntary", [0.3, 0.8])
def test_preemption_on_one_cpu_either_side(involuntary: float) -> None:
    c = case()
    c["switches_per_round_trip"]["trace"]["client"].update(
        involuntary=involuntary, voluntary=1 - involuntary
    )
    f = finding([c], "preempt")
    assert f["holds"] == (involuntary >= 0.5)
    assert ("preempts the client" in f["text"]) == f["holds"]
