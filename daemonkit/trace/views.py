"""Terminal views of a trace document: a text timeline per case and a table of the figures.

The timeline shows three consecutive round trips the client timed, from the middle of the
timed loop (:mod:`daemonkit.trace.analysis` picks a typical stretch by the client's own
clock, and says so when none was), one lane per CPU, one column per slice of time::

    cpu0 CCCCCCCCCoooooooooooooCCCCCCCCCooo
    cpu1 oooooPPPPPPPPPoooooooooooPPPPPPPPP
    trip |                |
    wake 1       2        3       4

``C`` client, ``P`` peer, ``T`` another thread of either side (a ZeroMQ I/O thread), ``·``
idle, ``o`` any other task. A column shows an end (client, peer, their threads) if one ran
in it at all, however briefly (the one that ran longest), else whoever held most of it: a
hop shorter than a column stays visible. The ``trip`` row marks where each round trip began;
the ``wake`` row numbers the wake-ups, listed below it as ``waker -> woken`` with the CPUs and
how long the woken side waited to run.

Nothing here measures: it reads the ``daemonkit.trace/1`` document, so a saved file prints
the same views as the run that wrote it.

*Kernel path*: none (terminal output only). *Lifetime*: none.
*See also*: :mod:`daemonkit.trace.analysis` for what each figure means.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.table import Table
from rich.text import Text

from daemonkit.units import fmt_ns

__all__ = ["LETTERS", "figures_table", "timeline_text"]

LETTERS = {"client": "C", "peer": "P", "thread": "T", "idle": "·", "other": "o"}
STYLES = {
    "client": "bold blue",
    "peer": "bold dark_orange",
    "thread": "bold green",
    "idle": "dim",
    "other": "red",
}
_MARKS = "123456789abcdefghijklmnopqrstuvwxyz"


def _us(ns: float | None) -> str:
    return "–" if ns is None else fmt_ns(ns)


_ENDS = ("client", "peer", "thread")


def _column_role(held: Counter[str]) -> str:
    """Who a column shows: the end that ran longest in it, if any ran; else the task that
    held most of it (idle when nothing is known)."""
    ends = Counter({r: t for r, t in held.items() if r in _ENDS and t > 0})
    pick = ends or held
    return pick.most_common(1)[0][0] if pick else "idle"


def _heading(case: dict[str, Any], span: int, col: float) -> str:
    tl = case["timeline"]
    head = f"{case['channel']} {case['peer']} peer, cpu {case['cpu']}: "
    if "round_trip_ns" not in tl:  # a document written before the window was the client's
        return head + f"{_us(span)} ({tl['round_trips']} x the p50 round trip)\n"
    k, first = tl["round_trips"], tl["first"]
    times = ", ".join(_us(t) for t in tl["round_trip_ns"])
    text = (
        f"round trips {first + 1}-{first + k} of {case['round_trips']} as the client timed "
        f"them ({times}; p50 {_us(case['latency_ns']['p50_ns'])}), {_us(span)}, "
        f"one column = {_us(col)}\n"
    )
    if not tl["typical"]:
        lo, hi = tl["typical_range"]
        text += (
            f"  no {k} consecutive round trips lasted {lo:g}-{hi:g} x {k} p50 round trips: "
            f"the nearest are shown\n"
        )
    if tl.get("events_lost"):
        text += (
            f"  perf lost events in every stretch of {k} round trips: switches may be "
            "missing from this one\n"
        )
    if tl.get("others_share", 0) >= 0.01:
        text += f"  other tasks held these CPUs {100 * tl['others_share']:.0f} % of this window\n"
    return head + text


def timeline_text(case: dict[str, Any], width: int = 96) -> Text:
    """The timeline of one case as styled text (letters stay readable without colour)."""
    tl = case["timeline"]
    span = max(1, int(tl["span_ns"]))
    col = span / width
    out = Text()
    out.append(_heading(case, span, col))
    for cpu, lane in sorted(tl["lanes"].items(), key=lambda kv: int(kv[0])):
        out.append(f"cpu{cpu:<2} ")
        for i in range(width):
            lo, hi = i * col, (i + 1) * col
            held: Counter[str] = Counter()
            for start, end, role, _tid, _comm in lane:
                t = min(end, hi) - max(start, lo)
                if t > 0:
                    held[role] += int(t) or 1
            role = _column_role(held)
            out.append(LETTERS[role], style=STYLES[role])
        out.append("\n")
    if "starts_ns" in tl:
        trips = [" "] * width
        for ts in tl["starts_ns"]:
            trips[min(width - 1, int(ts / col))] = "|"
        out.append("trip  " + "".join(trips).rstrip() + "\n")
    wakes = tl["wakeups"][: len(_MARKS)]
    row = [" "] * width
    for mark, w in zip(_MARKS, wakes, strict=False):
        row[min(width - 1, int(w["ts"] / col))] = mark
    out.append("wake  " + "".join(row).rstrip() + "\n")
    for mark, w in zip(_MARKS, wakes, strict=False):
        waited = (
            f"ran {_us(w['ran_ts'] - w['ts'])} later"
            if w["ran_ts"] is not None
            else ("not run within the window")
        )
        out.append(
            f"  {mark} {_us(w['ts']):>9}  {LETTERS[w['waker']]} {w['waker']} (cpu{w['cpu']}) -> "
            f"{LETTERS[w['woken']]} {w['woken']} {w['woken_comm']} (cpu{w['target_cpu']}), "
            f"{waited}\n"
        )
    others = sorted(
        {
            f"{comm} {tid}"
            for lane in tl["lanes"].values()
            for _, _, r, tid, comm in lane
            if r == "other"
        }
    )
    legend = ", ".join(f"{LETTERS[r]} {r}" for r in LETTERS)
    if others:
        legend += f" ({', '.join(others[:6])}{', ...' if len(others) > 6 else ''})"
    out.append(f"  {legend}\n", style="dim")
    return out


def figures_table(cases: list[dict[str, Any]]) -> Table:
    """Per round trip, from the trace: one column per case."""
    t = Table(title="per round trip, from the scheduler's events", title_justify="left")
    t.add_column("figure")
    for c in cases:
        t.add_column(f"{c['channel']} {c['peer']} {c['cpu']}", justify="right")

    def row(label: str, fn: Any) -> None:
        t.add_row(label, *(fn(c) for c in cases))

    row(
        "round trip p50 / p99 (client's clock)",
        lambda c: f"{_us(c['latency_ns']['p50_ns'])} / {_us(c['latency_ns']['p99_ns'])}",
    )
    row(
        "switches: trace (client + peer)",
        lambda c: (
            f"{c['switches_per_round_trip']['trace']['client']['total']:.2f} + "
            f"{c['switches_per_round_trip']['trace']['peer']['total']:.2f}"
        ),
    )
    row(
        "switches: getrusage (client + peer)",
        lambda c: (
            f"{c['switches_per_round_trip']['getrusage']['client']['total']:.2f} + "
            f"{c['switches_per_round_trip']['getrusage']['peer']['total']:.2f}"
        ),
    )
    row(
        "  of them involuntary (trace)",
        lambda c: (
            f"{c['switches_per_round_trip']['trace']['client']['involuntary']:.2f} + "
            f"{c['switches_per_round_trip']['trace']['peer']['involuntary']:.2f}"
        ),
    )
    row(
        "  trace vs getrusage (allowed 10 %)",
        lambda c: (
            f"{100 * c['switches_per_round_trip']['agreement']['difference']:.1f} %"
            + ("" if c["switches_per_round_trip"]["agreement"]["agree"] else " DIFFER")
        ),
    )
    row("wake-ups", lambda c: f"{c['wakeups']['all']['per_round_trip']:.2f}")
    row(
        "wake-up latency p50 / p99",
        lambda c: f"{_us(c['wakeups']['all']['p50_ns'])} / {_us(c['wakeups']['all']['p99_ns'])}",
    )
    row(
        "  woken on an idle CPU (to peer / to client)",
        lambda c: " / ".join(
            "–"
            if c["wakeups"][k]["on_idle_cpu"] is None
            else f"{100 * c['wakeups'][k]['on_idle_cpu']:.0f} %"
            for k in ("to_peer", "to_client")
        ),
    )
    row(
        "run time: client / peer",
        lambda c: (
            f"{_us(c['cpu_time']['run_ns_per_round_trip']['client'])} / "
            f"{_us(c['cpu_time']['run_ns_per_round_trip']['peer'])}"
        ),
    )
    row(
        "  per hop (run slice p50): client / peer",
        lambda c: (
            f"{_us(c['run_slices']['client']['p50_ns'])} / {_us(c['run_slices']['peer']['p50_ns'])}"
        ),
    )
    row(
        "CPU idle",
        lambda c: ", ".join(
            f"cpu{k} {_us(v)}" for k, v in c["cpu_time"]["idle_ns_per_round_trip"].items()
        ),
    )
    row("other tasks on these CPUs", lambda c: _us(c["cpu_time"]["run_ns_per_round_trip"]["other"]))
    row("events recorded / lost by perf", lambda c: f"{c['events']:,} / {c['lost_events']:,}")
    row(
        "sleeps on a lock (futex): all / the GIL",
        lambda c: (
            f"{c['futex_sleeps_per_round_trip']['total']:.2f} / "
            f"{c['futex_sleeps_per_round_trip']['gil']:.2f}"
        ),
    )
    return t
