"""Views of a results document: the table sorted by p50, the machine, and a comparison.

Nothing here measures: every figure comes from a :class:`~daemonkit.bench.results.Run`, so
the table printed at the end of a run and one printed from a saved file are the same.

*Kernel path*: none (terminal output only).
*Lifetime*: none.
*See also*: :mod:`daemonkit.bench.results` for what each figure means.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from daemonkit.bench.results import Result, Run
from daemonkit.units import fmt_count, fmt_ns, fmt_size, fmt_size_short

if TYPE_CHECKING:
    from daemonkit.bench.compare import Comparison, Ratio

__all__ = [
    "FULL_WIDTH",
    "comparison_lines",
    "comparison_table",
    "console",
    "fastest_lines",
    "machine_lines",
    "reference_lines",
    "result_tables",
    "significance_line",
    "stream_tables",
    "unmeasured_lines",
]


def console(stderr: bool = False, wide: bool = False) -> Console:
    """A console as wide as the terminal (or as ``COLUMNS`` says); a file or a pipe without
    ``COLUMNS`` gets the full width of the widest table. *wide*: never narrower than that."""
    c = Console(stderr=stderr, highlight=False)
    if wide or (not c.is_terminal and "COLUMNS" not in os.environ):
        c = Console(stderr=stderr, highlight=False, width=max(c.width, FULL_WIDTH))
    return c


# The full table's width; below it the compact table is printed.
FULL_WIDTH = 160


def result_tables(run: Run, width: int = FULL_WIDTH) -> list[Table]:
    """One table per message size, rows sorted by p50, each with its ratio to the fastest;
    the full table when *width* columns hold it, else the compact one (channel, peer, size,
    p50, p99, round trips/s, CPU time of both ends per round trip, x fastest). Cells fold,
    they are never cut.

    Notification channels (no payload, size 0) join the table of the smallest size, so that
    a bare wake-up is seen beside the cheapest message.
    """
    tables = []
    for title, rows in _groups(run):
        full = _table(title, rows, compact=False)
        fits = _natural_width(full) <= width
        tables.append(full if fits else _table(title, rows, compact=True))
    return tables


def fastest_lines(run: Run) -> list[str]:
    """Per table, the hyperfine-style line: the fastest case against the runner-up (p50)."""
    from daemonkit.bench.compare import distributions, faster_line

    dists = distributions(run, "this run")
    lines = []
    for _, rows in _groups(run):
        ranked = [r for r in _sorted(rows) if r.key in dists]
        if len(ranked) >= 2:
            a, b = ranked[0], ranked[1]
            batches = (a.batch_p50_ns, b.batch_p50_ns)
            line = faster_line(_name(a), dists[a.key], _name(b), dists[b.key], batches)
            lines.append(line + " (p50)")
    return lines


SPIN_TARGET = 1.5  # shm-spin's p50 over the bare busy-poll loop's, at most


def reference_lines(run: Run) -> list[str]:
    """The references measured in the run, each held against its channel's p50 (local forked
    peer, the same size, or the smallest measured when the tool has no size of ours)."""
    if not run.references:
        return []
    by_case = {(r.channel, r.size): r for r in run.results if r.ok and r.peer == "process"}
    lines = ["references (pinned like the channels; C tools print a mean, the loops a p50):"]
    for ref in run.references:
        name = f"  {ref['name']:<22}"
        if ref.get("skipped"):
            lines.append(f"{name}skipped: {ref['skipped']}")
            continue
        figure = ref["p50_ns"] if ref["p50_ns"] is not None else ref["mean_ns"]
        stat = "p50" if ref["p50_ns"] is not None else "mean"
        line = f"{name}{ref['what']}, {fmt_size_short(ref['size'])}: {stat} {fmt_ns(figure)}"
        sizes = sorted(s for c, s in by_case if c == ref["channel"])
        size = ref["size"] if ref["size"] in sizes else (sizes[0] if sizes else None)
        mine = by_case.get((ref["channel"], size)) if size is not None else None
        if mine is not None and mine.latency_ns is not None:
            ratio = mine.latency_ns.p50 / figure
            line += (
                f"; {ref['channel']} {fmt_size_short(mine.size)} p50 "
                f"{fmt_ns(mine.latency_ns.p50)} is {ratio:.2f}x"
            )
            if ref["name"] == "python busy-poll loop":
                verdict = "PASS" if ratio <= SPIN_TARGET else "FAIL"
                line += f" (target <= {SPIN_TARGET}x: {verdict})"
        lines.append(line)
    return lines


def stream_tables(run: Run) -> list[Table]:
    """Stream mode: one table per message size, rows by MB/s (fastest first), with each end's
    CPU time per message."""
    rows = [r for r in run.results if r.messages_per_s is not None]
    tables = []
    for size in sorted({r.size for r in rows}):
        t = _new_table(f"one-way streams of {fmt_size(size)} messages", compact=True)
        for col in ("channel", "peer"):
            t.add_column(col)
        for col in ("messages/s", "MB/s", "CPU µs/msg c/p", "x fastest"):
            t.add_column(col, justify="right")
        mine = sorted((r for r in rows if r.size == size), key=lambda r: -(r.messages_per_s or 0))
        best = mine[0].messages_per_s or 1.0
        for r in mine:
            cpu = r.cpu_us_per_message
            peer = "?" if cpu is None or cpu.peer is None else _us(cpu.peer.total)
            cpu_cell = "-" if cpu is None else f"{_us(cpu.client.total)}/{peer}"
            t.add_row(
                r.channel,
                r.peer,
                fmt_count(r.messages_per_s or 0),
                f"{r.mb_per_s:,.1f}" if r.mb_per_s is not None else "-",
                cpu_cell,
                f"{best / (r.messages_per_s or best):.2f}",
            )
        tables.append(t)
    return tables


def _name(r: Result) -> str:
    return f"{r.channel}/{r.peer}"


def _groups(run: Run) -> list[tuple[str, list[Result]]]:
    ok = [r for r in run.results if r.ok]
    sizes = sorted({r.size for r in ok if r.payload}) or [0]
    groups: dict[int, list[Result]] = {s: [] for s in sizes}
    for r in ok:
        groups[r.size if r.payload else sizes[0]].append(r)
    out = []
    for size, rows in groups.items():
        if not rows:
            continue
        title = f"round trips of {fmt_size(size)} messages"
        if any(not r.payload for r in rows):
            title += " (and notification channels: no payload)"
        out.append((title, rows))
    return out


def _sorted(rows: list[Result]) -> list[Result]:
    return sorted(rows, key=lambda r: r.latency_ns.p50 if r.latency_ns else 0.0)


_MEASURE = Console(width=10_000, file=io.StringIO())  # measures a table's natural width


def _new_table(title: str, compact: bool = False) -> Table:
    """No vertical rules: the width goes to the figures (compact: one space between
    columns)."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0) if compact else (0, 1),
    )


def _table(title: str, rows: list[Result], compact: bool) -> Table:
    t = _new_table(title, compact)
    # Two-line headers: a column is as wide as its figures, not as its name.
    right: tuple[str, ...] = ("p50", "p99", "round\ntrips/s", "CPU\nper rt", "x\nfastest")
    if not compact:
        right = ("p50", "p90", "p99", "p99.9", "max", "round\ntrips/s", "MB/s",
                 "cs/rt\nvol c/p", "cs/rt\ninvol c/p", "CPU µs/rt\nc/p", "CPU use\nc/p",
                 "x\nfastest")  # fmt: skip
    for col in ("channel", "peer", "size"):
        t.add_column(col, overflow="fold")
    for col in right:
        t.add_column(col, justify="right", overflow="fold")
    rows = _sorted(rows)
    fastest = rows[0].latency_ns.p50 if rows[0].latency_ns else 1.0
    for r in rows:
        lat, cs = r.latency_ns, r.ctx_switches_per_roundtrip
        assert lat is not None and cs is not None
        size = fmt_size_short(r.size) if r.payload else "-"
        ratio = f"{lat.p50 / fastest:.2f}"
        rate = fmt_count(r.roundtrips_per_s or 0)
        if compact:
            cells = (fmt_ns(lat.p50), fmt_ns(lat.p99), rate, _cpu_total(r), ratio)
            t.add_row(r.channel, r.peer, size, *cells)
            continue
        t.add_row(
            r.channel,
            r.peer,
            size,
            fmt_ns(lat.p50),
            fmt_ns(lat.p90),
            fmt_ns(lat.p99),
            fmt_ns(lat.p999),
            fmt_ns(lat.max),
            rate,
            "-" if r.mb_per_s is None else f"{r.mb_per_s:,.1f}",
            f"{cs.voluntary.client:.2f}/{cs.voluntary.peer:.2f}",
            f"{cs.involuntary.client:.2f}/{cs.involuntary.peer:.2f}",
            *_cpu_cells(r),
            ratio,
        )
    return t


def _cpu_cells(r: Result) -> tuple[str, str]:
    """CPU µs per round trip of each end, and the share of one CPU each kept busy (its CPU
    time over the wall time of the round trips: 1.00 is a core burnt the whole time)."""
    cpu, lat = r.cpu_us_per_roundtrip, r.latency_ns
    if cpu is None or lat is None or not lat.mean:
        return "-", "-"
    wall_us = r.wall_us_per_roundtrip or lat.mean / 1000  # older documents: the mean
    peer_us = "?" if cpu.peer is None else _us(cpu.peer.total)
    peer_use = "?" if cpu.peer is None else f"{cpu.peer.total / wall_us:.2f}"
    return f"{_us(cpu.client.total)}/{peer_us}", f"{cpu.client.total / wall_us:.2f}/{peer_use}"


def _cpu_total(r: Result) -> str:
    """CPU time both ends used per round trip (the client's alone, marked, when the peer's
    cannot be known)."""
    cpu = r.cpu_us_per_roundtrip
    if cpu is None:
        return "-"
    if cpu.peer is None:
        return f"{fmt_ns(cpu.client.total * 1000)} + ?"
    return fmt_ns((cpu.client.total + cpu.peer.total) * 1000)


def _us(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


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
    facts = m.get("facts")
    if facts:  # what makes a run noisy, as the machine says it (None: not exposed)
        lines.insert(
            1,
            f"run conditions: governor {facts.get('governor') or 'not exposed'}, isolated CPUs "
            f"{facts.get('isolated') or 'none'}, nohz_full {facts.get('nohz_full') or 'none'}, "
            f"virtualization {facts.get('virtualization') or 'none'}",
        )
    if pin.get("note"):
        lines.insert(len(lines) - 1, f"note: {pin['note']}")
    return lines


def comparison_table(cmp: Comparison, width: int = FULL_WIDTH) -> Table:
    """Per case the p50 and p99 ratios new/old with their verdicts; where *width* columns
    hold them, the old and new p50 and p99 too."""
    full = _comparison_table(cmp, compact=False)
    if _natural_width(full) <= width:
        return full
    return _comparison_table(cmp, compact=True)


def _natural_width(table: Table) -> int:
    return Measurement.get(_MEASURE, _MEASURE.options, table).maximum


def _comparison_table(cmp: Comparison, compact: bool) -> Table:
    title = f"{cmp.new_name} against {cmp.old_name} (ratio new/old; below 1: faster now)"
    t = _new_table(title, compact)
    for col in ("channel", "peer", "size") if compact else ("channel", "peer", "cpu", "size"):
        t.add_column(col, overflow="fold")
    values = () if compact else ("old p50", "new p50", "old p99", "new p99")
    for col in (*values, "p50 new/old", "p50", "p99 new/old", "p99"):
        t.add_column(col, justify="right", overflow="fold")
    for c in cmp.cases:
        r, o = c.new, c.old
        assert r.latency_ns is not None and o.latency_ns is not None
        peer = r.peer if o.peer == r.peer else f"{r.peer} vs {o.peer}"
        head = [r.channel, peer, fmt_size_short(r.size)]
        if not compact:
            head.insert(2, r.cpu)
            head += [fmt_ns(o.latency_ns.p50), fmt_ns(r.latency_ns.p50),
                     fmt_ns(o.latency_ns.p99), fmt_ns(r.latency_ns.p99)]  # fmt: skip
        t.add_row(*head, _ratio(c.p50), _verdict(c.p50, compact), _ratio(c.p99),
                  _verdict(c.p99, compact))  # fmt: skip
    if compact:
        t.caption, t.caption_justify = "n.s.: not significant", "left"
    return t


def _verdict(r: Ratio, compact: bool) -> str:
    return "n.s." if compact and r.verdict == "not significant" else r.verdict


def comparison_lines(cmp: Comparison) -> list[str]:
    """The summary line and the notes."""
    return [line for line in (cmp.summary(),) if line] + cmp.notes


def significance_line(margin: float) -> str:
    """How a verdict was decided, with its threshold."""
    from daemonkit.bench.compare import CONFIDENCE, RESAMPLES

    return (
        f"significant: the {CONFIDENCE:g} % interval of the ratio ({RESAMPLES} bootstrap "
        f"resamples of each run's timed batches, then its round trips) lies beyond ±{margin:.0%} "
        "(run-to-run noise) on one side; ± is the resamples' standard deviation"
    )


def _ratio(r: Ratio) -> str:
    return f"{r.value:.2f}" if r.sd is None else f"{r.value:.2f} ± {spread(r.sd)}"


def spread(sd: float) -> str:
    """A ± figure: two decimals, or one significant digit when smaller (``0.003``)."""
    return f"{sd:.2f}" if sd >= 0.005 else f"{sd:.1g}"
