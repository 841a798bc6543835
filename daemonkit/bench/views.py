"""Views of a results document: the table sorted by p50, the machine, and a comparison.

Nothing here measures: every figure comes from a :class:`~daemonkit.bench.results.Run`, so
the table printed at the end of a run and one printed from a saved file are the same.

*Kernel path*: none (terminal output only).
*Lifetime*: none.
*See also*: :mod:`daemonkit.bench.results` for what each figure means.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

from daemonkit.bench.results import Result, Run
from daemonkit.machine import identity_differences, noted_differences
from daemonkit.units import fmt_count, fmt_ns, fmt_size, fmt_size_short

__all__ = ["compare_table", "console", "machine_lines", "result_tables", "unmeasured_lines"]


def console(stderr: bool = False) -> Console:
    """A console that keeps tables whole when the output is a file or a pipe."""
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c = Console(stderr=stderr, highlight=False, width=160)
    return c


def result_tables(run: Run) -> list[Table]:
    """One table per message size, rows sorted by p50, each with its ratio to the fastest.

    Notification channels (no payload, size 0) join the table of the smallest size, so that
    a bare wake-up is seen beside the cheapest message.
    """
    ok = [r for r in run.results if r.ok]
    sizes = sorted({r.size for r in ok if r.payload}) or [0]
    groups: dict[int, list[Result]] = {s: [] for s in sizes}
    for r in ok:
        groups[r.size if r.payload else sizes[0]].append(r)
    tables = []
    for size, rows in groups.items():
        if not rows:
            continue
        title = f"round trips of {fmt_size(size)} messages"
        if any(not r.payload for r in rows):
            title += " (and notification channels: no payload)"
        tables.append(_table(title, rows))
    return tables


def _table(title: str, rows: list[Result]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("channel", "peer", "size"):
        t.add_column(col)
    for col in ("p50", "p90", "p99", "p99.9", "max", "round trips/s", "MB/s"):
        t.add_column(col, justify="right")
    t.add_column("cs/rt vol c/p", justify="right")
    t.add_column("invol c/p", justify="right")
    t.add_column("x fastest", justify="right")
    rows = sorted(rows, key=lambda r: r.latency_ns.p50 if r.latency_ns else 0.0)
    fastest = rows[0].latency_ns.p50 if rows[0].latency_ns else 1.0
    for r in rows:
        lat, cs = r.latency_ns, r.ctx_switches_per_roundtrip
        assert lat is not None and cs is not None
        t.add_row(
            r.channel,
            r.peer,
            fmt_size_short(r.size) if r.payload else "-",
            fmt_ns(lat.p50),
            fmt_ns(lat.p90),
            fmt_ns(lat.p99),
            fmt_ns(lat.p999),
            fmt_ns(lat.max),
            fmt_count(r.roundtrips_per_s or 0),
            "-" if r.mb_per_s is None else f"{r.mb_per_s:,.1f}",
            f"{cs.voluntary.client:.2f}/{cs.voluntary.peer:.2f}",
            f"{cs.involuntary.client:.2f}/{cs.involuntary.peer:.2f}",
            f"{lat.p50 / fastest:.2f}",
        )
    return t


def unmeasured_lines(results: Iterable[Result]) -> list[str]:
    """One line per case that failed or was skipped, with the reason."""
    lines = []
    for r in results:
        if r.error is not None:
            lines.append(f"FAILED  {r.channel} {r.peer} {fmt_size(r.size)}: {r.error}")
        elif r.skipped is not None:
            lines.append(f"skipped {r.channel} {r.peer} {fmt_size(r.size)}: {r.skipped}")
    return lines


def machine_lines(run: Run) -> list[str]:
    m = run.machine
    pin = m.get("pinning", {})
    lines = [
        f"machine: {m.get('hostname')}, {m.get('kernel')} {m.get('arch')}, "
        f"{m.get('cpu_model')} x {m.get('cpu_count')} CPUs (allowed: {m.get('cpus_allowed')}), "
        f"load {m.get('load_avg')}",
        f"software: {m.get('python')}, pyzmq {m.get('pyzmq')}, libzmq {m.get('libzmq')}",
        f"pinning (--cpu {pin.get('mode')}): client on CPUs {pin.get('client')}, "
        f"peer on CPUs {pin.get('peer')}",
        f"timer overhead: {run.timer_overhead_ns:.0f} ns per sample (included in every figure)",
    ]
    if pin.get("note"):
        lines.insert(3, f"note: {pin['note']}")
    return lines


def compare_table(old: Run, new: Run, old_name: str) -> tuple[Table, list[str]]:
    """p50 of each case measured in both runs, and new/old (below 1: faster now)."""
    t = Table(title=f"compared with {old_name} (p50; ratio new/old)", title_justify="left")
    for col in ("channel", "peer", "cpu", "size"):
        t.add_column(col)
    for col in ("old p50", "new p50", "new/old"):
        t.add_column(col, justify="right")
    before = {r.key: r for r in old.results if r.latency_ns}
    notes = [f"differs: {d}" for d in identity_differences(old.machine, new.machine)]
    notes += [f"changed: {d}" for d in noted_differences(old.machine, new.machine)]
    matched = 0
    for r in new.results:
        o = before.get(r.key) or before.get(_across_hosts_key(r))
        if r.latency_ns is None or o is None or o.latency_ns is None:
            continue
        matched += 1
        ratio = r.latency_ns.p50 / o.latency_ns.p50
        verdict = "faster" if ratio < 1 else "slower" if ratio > 1 else "same"
        t.add_row(
            r.channel,
            r.peer if o.peer == r.peer else f"{r.peer} vs {o.peer}",
            r.cpu,
            fmt_size_short(r.size),
            fmt_ns(o.latency_ns.p50),
            fmt_ns(r.latency_ns.p50),
            f"{ratio:.2f} ({verdict})",
        )
    if not matched:
        notes.append("no case was measured in both runs")
    return t, notes


def _across_hosts_key(r: Result) -> tuple[str, str, str, int]:
    """A remote case (``bench --connect``) pairs with the same case against a local forked
    peer, and back: the cost of crossing a host boundary, on the same axes."""
    other = {"remote": "process", "process": "remote"}.get(r.peer, r.peer)
    return (r.channel, other, r.cpu, r.size)
