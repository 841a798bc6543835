"""The reading of a trace: sentences chosen by computed conditions, each with its threshold.

Every condition is computed from the figures of :mod:`daemonkit.trace.analysis` and has a
sentence for each side of its threshold, so what is said is what was measured:

* ``wake_share``: the share of the round trip spent between a wake-up and the woken side
  running (>= :data:`WAKE_DOMINATES`: wake-ups dominate; below: running the two sides does);
  with ``idle_wake``: whether most wake-ups landed on an idle CPU (which must itself wake up
  first) or on a busy one (the woken side waits for its turn);
* ``preempt``: on one CPU, whether the woken side mostly preempts the waker (wake-up
  preemption: the waker is switched out still runnable, an involuntary switch);
* ``thread_switches``/``gil``: whether thread peers switch more than process peers of the
  same channel (by :data:`EXTRA_SWITCHES`), and whether thread peers sleep on the
  interpreter lock (a futex wait on a word in libpython's data) at least :data:`GIL_SLEEPS`
  times per round trip;
* ``others``: whether other tasks held the ends' CPUs for :data:`OTHERS_MATTER` of the time;
* ``agreement``: whether the trace's switch count and getrusage(2)'s agree.

*Kernel path*: none. *Lifetime*: plain values. *See also*: :mod:`daemonkit.trace.analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemonkit.trace.analysis import AGREE_WITHIN
from daemonkit.units import fmt_ns

__all__ = ["EXTRA_SWITCHES", "GIL_SLEEPS", "OTHERS_MATTER", "WAKE_DOMINATES", "Finding", "read"]

WAKE_DOMINATES = 0.5  # share of the round trip spent waiting to run after wake-ups
MOSTLY = 0.5  # share of wake-ups (or switches) that makes a "most"
EXTRA_SWITCHES = 0.10  # thread peers switch this much more than process peers: "more"
GIL_SLEEPS = 0.10  # futex sleeps per round trip worth naming
OTHERS_MATTER = 0.10  # share of the ends' CPU time other tasks took

Finding = dict[str, Any]  # {"case", "condition", "holds", "value", "threshold", "text"}


def _us(ns: float | None) -> str:
    return "?" if ns is None else fmt_ns(ns)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _case(c: dict[str, Any]) -> str:
    return f"{c['channel']} {c['peer']} {c['cpu']}"


def _finding(
    c: dict[str, Any] | None, cond: str, holds: bool, value: float, thr: str, text: str
) -> Finding:
    return {
        "case": _case(c) if c is not None else None,
        "condition": cond,
        "holds": holds,
        "value": round(value, 4),
        "threshold": thr,
        "text": text,
    }


def _wake(c: dict[str, Any]) -> list[Finding]:
    w = c["wakeups"]["all"]
    rt = c["latency_ns"]["p50_ns"] or 1
    share = (w["per_round_trip"] * (w["p50_ns"] or 0)) / rt
    dominate = share >= WAKE_DOMINATES
    runs = c["cpu_time"]["run_ns_per_round_trip"]
    head = f"{_case(c)}: waiting to run after a wake-up is {_pct(share)} of the round trip"
    thr = f">= {_pct(WAKE_DOMINATES)} of the p50 round trip"
    if dominate:
        text = (
            f"{head} ({w['per_round_trip']:.2f} wake-ups of p50 {_us(w['p50_ns'])} in a p50 "
            f"round trip of {_us(rt)}): the wake-ups dominate."
        )
    else:
        text = (
            f"{head} ({w['per_round_trip']:.2f} wake-ups of p50 {_us(w['p50_ns'])}): the time "
            f"goes to running the two sides ({_us(runs['client'])} client, "
            f"{_us(runs['peer'])} peer per round trip)."
        )
    out = [_finding(c, "wake_share", dominate, share, thr, text)]
    remote = [c["wakeups"][k] for k in ("to_peer", "to_client")]
    on_other = [x for x in remote if x["other_cpu"]]
    if on_other:
        idle = sum(x["on_idle_cpu"] * x["count"] for x in on_other) / max(
            1, sum(x["count"] for x in on_other)
        )
        mostly_idle = idle >= MOSTLY
        if mostly_idle:
            text = (
                f"{_case(c)}: {_pct(idle)} of the wake-ups found the other CPU idle, which "
                "had to be woken itself (an interrupt, then out of its idle loop) before the "
                "woken side could run."
            )
        else:
            text = (
                f"{_case(c)}: only {_pct(idle)} of the wake-ups found the other CPU idle; "
                "mostly it was busy, and the woken side waited for its turn there."
            )
        out.append(_finding(c, "idle_wake", mostly_idle, idle, f">= {_pct(MOSTLY)}", text))
    return out


def _preempt(c: dict[str, Any]) -> list[Finding]:
    if c["cpu"] != "same":
        return []
    sw = c["switches_per_round_trip"]["trace"]["client"]
    share = sw["involuntary"] / sw["total"] if sw["total"] else 0.0
    holds = share >= MOSTLY
    if holds:
        text = (
            f"{_case(c)}: on one CPU the woken peer preempts the client at its send "
            f"({_pct(share)} of the client's switches are involuntary): the client is still "
            "runnable, not asleep, when the echo comes back."
        )
    else:
        text = (
            f"{_case(c)}: on one CPU the client mostly goes to sleep before the peer runs "
            f"(only {_pct(share)} of its switches are preemptions)."
        )
    return [_finding(c, "preempt", holds, share, f">= {_pct(MOSTLY)} involuntary", text)]


def _threads(cases: Sequence[dict[str, Any]]) -> list[Finding]:
    out = []
    for t in (c for c in cases if c["peer"] == "thread"):
        p = next(
            (c for c in cases if c["peer"] == "process" and c["channel"] == t["channel"]), None
        )
        fs = t["futex_sleeps_per_round_trip"]
        ts = t["switches_per_round_trip"]["trace"]["total"]
        if p is not None:
            ps = p["switches_per_round_trip"]["trace"]["total"]
            extra = ts - ps
            more = extra >= EXTRA_SWITCHES * ps
            thr = f"thread >= process + {_pct(EXTRA_SWITCHES)}"
            lead = (
                f"{_case(t)}: thread peers switched {ts:.2f} times per round trip against "
                f"{ps:.2f} for process peers"
            )
            if more:
                text = f"{lead}: {extra:.2f} extra per round trip."
            else:
                text = f"{lead}: no more than process peers."
            out.append(_finding(t, "thread_switches", more, extra, thr, text))
        gil, rest = fs["gil"], fs["total"] - fs["gil"]
        locks = f", and {rest:.2f} on other locks (the channel's)" if rest >= GIL_SLEEPS else ""
        thr = f">= {GIL_SLEEPS:g} per round trip"
        if gil >= GIL_SLEEPS:
            text = (
                f"{_case(t)}: {gil:.2f} switches per round trip were sleeps on the interpreter "
                "lock (a futex in libpython's own data: the GIL): a thread woke, found the GIL "
                f"held by the other and slept again{locks}."
            )
        else:
            text = (
                f"{_case(t)}: only {gil:.2f} switches per round trip were sleeps on the "
                "interpreter lock (GIL): each side released it as it blocked on the channel, "
                f"so the woken side found it free{locks}."
            )
        out.append(_finding(t, "gil", gil >= GIL_SLEEPS, gil, thr, text))
    return out


def _others(c: dict[str, Any]) -> Finding:
    ct = c["cpu_time"]
    span = c["latency_ns"]["wall_ns_per_round_trip"] * max(1, len(ct["cpus"]))
    share = ct["run_ns_per_round_trip"]["other"] / span if span else 0.0
    holds = share >= OTHERS_MATTER
    top = ", ".join(o["comm"] for o in ct["other_tasks"][:3]) or "none"
    if holds:
        text = (
            f"{_case(c)}: other tasks held the ends' CPUs {_pct(share)} of the time "
            f"(mostly {top}): the round trips here include waiting for them."
        )
    else:
        text = f"{_case(c)}: the ends had their CPUs nearly to themselves (others {_pct(share)})."
    return _finding(c, "others", holds, share, f">= {_pct(OTHERS_MATTER)}", text)


def _agreement(cases: Sequence[dict[str, Any]]) -> Finding:
    worst = max(cases, key=lambda c: c["switches_per_round_trip"]["agreement"]["difference"])
    a = worst["switches_per_round_trip"]
    d = a["agreement"]["difference"]
    holds = d <= AGREE_WITHIN
    pair = f"{a['trace']['total']:.3f} against {a['getrusage']['total']:.3f} per round trip"
    if holds:
        text = (
            f"The switches counted in the trace agree with getrusage in every case (largest "
            f"difference {_pct(d)}, {_case(worst)}: {pair})."
        )
    else:
        text = (
            f"The switches counted in the trace differ from getrusage by {_pct(d)} in "
            f"{_case(worst)} ({pair}): events were lost or the loop was disturbed."
        )
    return _finding(None, "agreement", holds, d, f"<= {_pct(AGREE_WITHIN)}", text)


def read(cases: Sequence[dict[str, Any]]) -> tuple[list[Finding], str]:
    """The findings of every case and the paragraph made of their sentences."""
    if not cases:
        return [], ""
    found: list[Finding] = []
    for c in cases:
        found += _wake(c) + _preempt(c)
    found += _threads(cases)
    found += [_others(c) for c in cases]
    found.append(_agreement(cases))
    return found, " ".join(f["text"] for f in found)
