"""The plots of a bench run: latency CDFs, p50/p99 bars, the size sweep, CPU placement.

Every figure is a view of one ``daemonkit.bench/1`` document (and, with ``--compare``, of an
older one drawn on the same axes: dashed or dotted lines, black ticks); nothing is measured. A
result with an ``error`` (or ``skipped``) is left out of the pictures and listed by the page.

Facts about the numbers drawn:

* Latencies are round trips (client send, peer echo, client receive) in nanoseconds as
  ``time.perf_counter_ns`` saw them, drawn in microseconds. Distributions and size sweeps use
  log axes (they span orders of magnitude); bars use linear ones, where length means value.
* The CDF comes from the run's compact log-spaced ``histogram`` (bin edges and counts). A run
  without one is drawn from its percentiles only, and the legend says so.
* "Same", "split" and "none" are the ``--cpu`` placements: both ends on one CPU, on two CPUs,
  or wherever the scheduler puts them.

*Kernel path*: none (drawing only). *Lifetime*: a figure lives until its PNG bytes exist.
*See also*: daemonkit.bench (the producer), lmbench lat_pipe(8).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from daemonkit.report.figure import (
    BENCH_PEER_COLOR as PEER_COLOR,
)
from daemonkit.report.figure import (
    Plot,
    Table,
    fmt_bytes,
    fmt_ns,
    fmt_rate,
    log_axis,
    new_figure,
    peer_label,
    render_png,
    size_axis,
)
from daemonkit.report.load import result_key
from daemonkit.units import fmt_count

__all__ = ["bench_plots", "failed_results", "ok_results", "stream_results"]

Doc = dict[str, Any]
Result = dict[str, Any]
Key = tuple[str, str, str, int]

CPU_ORDER = ("same", "split", "none")


def ok_results(doc: Doc) -> list[Result]:
    """Results that measured something: no error and a latency summary."""
    return [r for r in doc["results"] if not r.get("error") and r.get("latency_ns")]


def failed_results(doc: Doc) -> list[Result]:
    """Results that failed (``error``) or could not run (``skipped``, e.g. a size too big)."""
    return [r for r in doc["results"] if r.get("error") or r.get("skipped")]


def _index(doc: Doc | None) -> dict[Key, Result]:
    return {} if doc is None else {result_key(r): r for r in ok_results(doc)}


def _ref_cpu(results: list[Result]) -> str:
    """The placement most results share (``same`` when present: the bench default)."""
    cpus = Counter(str(r.get("cpu", "same")) for r in results)
    return "same" if "same" in cpus else cpus.most_common(1)[0][0]


def _reference(results: list[Result]) -> dict[tuple[str, str], Result]:
    """Per (channel, peer): the result at the reference placement and its smallest size."""
    cpu = _ref_cpu(results)
    best: dict[tuple[str, str], Result] = {}
    for r in results:
        ch, peer, rcpu, size = result_key(r)
        if rcpu == cpu and ((ch, peer) not in best or size < int(best[ch, peer]["size"])):
            best[ch, peer] = r
    return best


def _distribution(r: Result) -> tuple[list[float], list[float], bool]:
    """(percentile in %, latency µs, exact) of one result: from its stored round trips
    (``latency_hdr``), else its log-spaced histogram, else its few percentiles."""
    hdr = r.get("latency_hdr")
    if isinstance(hdr, str):
        from daemonkit.bench.distribution import HdrError, decode

        try:
            d = decode(hdr)
        except HdrError:
            d = None
        if d is not None:
            # Beyond 1 - 1/n the run has no sample to tell: the maximum is drawn there.
            top = 100 * (1 - 1 / max(d.total, 2))
            qs = [q for q in _NINES_GRID if q < top] + [top]
            xs = [d.percentile(q) / 1e3 for q in qs[:-1]] + [d.percentile(100.0) / 1e3]
            return qs, xs, True
    hist = r.get("histogram")
    if isinstance(hist, Mapping) and hist.get("counts") and sum(hist["counts"]) > 0:
        edges, counts = hist["edges_ns"], hist["counts"]
        total, run = float(sum(counts)), 0
        top = 100 * (1 - 1 / max(total, 2))  # the maximum sits at 1 - 1/n, as above
        qs, xs = [], []
        for edge, c in zip(edges[1:], counts, strict=True):
            run += c
            qs.append(min(100 * run / total, top))
            xs.append(edge / 1e3)
        return qs, xs, True
    lat = r["latency_ns"]
    pts = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9), ("max", 100.0)]
    have = [(q, lat[k] / 1e3) for k, q in pts if k in lat]
    return [q for q, _ in have], [x for _, x in have], False


# Percentiles at which a distribution is drawn: eight steps per nine (90, 99, 99.9, ...).
_NINES_GRID = [100 * (1 - 10 ** (-k / 8)) for k in range(0, 57)]
_NINES_MAX = 1e6  # the axis ends at 99.9999 %


def _nines(q: float) -> float:
    """Percentile *q* (0-100) on the "nines" axis: 1 / (1 - q), so 90, 99 and 99.9 % are
    evenly spaced (HdrHistogram's percentile-distribution plot)."""
    return min(1 / max(1 - q / 100, 1e-12), _NINES_MAX)


def _nines_axis(ax: Any, top: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    ticks = [10.0**k for k in range(0, 7) if 10.0**k <= top * 1.01]
    if len(ticks) > 4:  # small panels: every other nine keeps the labels apart
        ticks = ticks[::2]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _nines_label(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1, max(top, 10))


def _nines_label(v: float) -> str:
    if v < 1.5:
        return "0%"
    nines = round(math.log10(v))
    return f"{100 - 100 / 10**nines:.{max(nines - 2, 0)}f}%"


def nines_plot(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot:
    """Per channel, latency against percentile on a log "nines" axis, one line per peer:
    the tail (p99, p99.9, the maximum) gets as much room as the middle."""
    ref = _reference(ok_results(doc))
    old_idx = _index(old)
    p50 = {key: r["latency_ns"]["p50"] for key, r in ref.items()}
    channels = sorted(
        {ch for ch, _ in ref}, key=lambda c: min(v for k, v in p50.items() if k[0] == c)
    )
    cols = min(3, len(channels))
    rows = -(-len(channels) // cols)
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], "p50", "p99", "p99.9", "max"])
    all_exact, any_old, top = True, False, 10.0
    title = S["nines.title"].format(cpu=S.get("cpu." + _ref_cpu(ok_results(doc)), "?"))
    with new_figure(7.8, 1.0 + 1.7 * rows, font) as fig:
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        for ax, ch in zip(axes.flat, channels, strict=False):
            for peer, color in PEER_COLOR.items():
                r = ref.get((ch, peer))
                if r is None:
                    continue
                qs, xs, exact = _distribution(r)
                all_exact &= exact
                nx = [_nines(q) for q in qs]
                top = max(top, *nx)
                ax.plot(nx, xs, "-" if exact else ":o", color=color, lw=1.4, ms=3)
                o = old_idx.get(result_key(r))
                if o is not None:
                    any_old = True
                    oq, ox, _ = _distribution(o)
                    ax.plot([_nines(q) for q in oq], ox, color=color, lw=1, ls="--", alpha=0.7)
                lat = r["latency_ns"]
                table.rows.append(
                    [
                        ch,
                        peer_label(S, peer),
                        fmt_bytes(r["size"]),
                        fmt_ns(lat["p50"]),
                        fmt_ns(lat["p99"]),
                        fmt_ns(lat.get("p999", lat["max"])),
                        fmt_ns(lat["max"]),
                    ]
                )
            ax.set_title(ch, fontsize=9, loc="left")
            ax.set_yscale("log")
            log_axis(ax.yaxis, subs=(1.0, 3.0))
            ax.tick_params(labelsize=7.5)
        for ax in axes.flat:
            _nines_axis(ax, top)
        for ax in list(axes.flat)[len(channels) :]:
            ax.set_visible(False)
        fig.supylabel(S["axis.latency_us"], fontsize=9)
        for i, ax in enumerate(axes.flat[: len(channels)]):
            if i + cols >= len(channels):  # lowest panel of its column: label the axis
                ax.tick_params(labelbottom=True)
                ax.set_xlabel(S["nines.xlabel"], fontsize=8)
        fig.suptitle(title)
        _legend(fig, S, doc, any_old, all_exact)
        png, w, h = render_png(fig, foot)
    return Plot("latency-nines", title, S["nines.caption"], png, w, h, table)


def _legend(fig: Any, S: Mapping[str, str], doc: Doc, with_old: bool, exact: bool) -> None:
    """One legend for all panels: the colours of the peers this document has, the older run."""
    from matplotlib.lines import Line2D

    approx = "" if exact else " " + S["cdf.approx"]
    peers = {r["peer"] for r in ok_results(doc)}
    handles = [
        Line2D([], [], color=c, lw=1.6, label=peer_label(S, p) + approx)
        for p, c in PEER_COLOR.items()
        if p in peers
    ]
    if with_old:
        handles.append(Line2D([], [], color="0.4", ls="--", label=S["compare.old"]))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def summary_plot(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot:
    """Every case of the run in one chart, fastest first: a dot at p50, a whisker to p99,
    on a log axis, coloured by peer; an older run's p50 as a ring."""
    cases = sorted(ok_results(doc), key=lambda r: r["latency_ns"]["p50"])
    old_idx = _index(old)
    cpus = {str(r.get("cpu", "same")) for r in cases}
    sizes = {int(r["size"]) for r in cases}
    fastest = cases[0]["latency_ns"]["p50"]
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], "p50", "p99", S["col.ratio"]])
    if len(cpus) > 1:
        table.headers.insert(3, "--cpu")

    def label(r: Result) -> str:
        parts = [f"{r['channel']} ({peer_label(S, r['peer'])})"]
        if len(sizes) > 1:
            parts.append(fmt_bytes(r["size"]) if r.get("payload", True) else S["bars.notify"])
        if len(cpus) > 1:
            parts.append(S.get(f"cpu.{r.get('cpu', 'same')}", str(r.get("cpu"))))
        return " · ".join(parts)

    with new_figure(7.8, 1.3 + 0.19 * len(cases), font) as fig:
        ax = fig.subplots()
        old_shown = False
        for i, r in enumerate(cases):
            lat, color = r["latency_ns"], PEER_COLOR.get(r["peer"], "tab:gray")
            ax.plot([lat["p50"] / 1e3, lat["p99"] / 1e3], [i, i], "-", color=color, lw=1.2)
            ax.plot([lat["p99"] / 1e3], [i], "|", color=color, ms=7, mew=1.5)
            ax.plot([lat["p50"] / 1e3], [i], "o", color=color, ms=5.5, mec="black", mew=0.5)
            o = old_idx.get(result_key(r))
            if o is not None:
                ax.plot(
                    [o["latency_ns"]["p50"] / 1e3],
                    [i],
                    "o",
                    mfc="none",
                    mec="black",
                    ms=7,
                    mew=1,
                    label=None if old_shown else f"p50 ({S['compare.old']})",
                )
                old_shown = True
            row = [
                r["channel"],
                peer_label(S, r["peer"]),
                fmt_bytes(r["size"]),
                fmt_ns(lat["p50"]),
                fmt_ns(lat["p99"]),
                f"{lat['p50'] / fastest:.2f}×",
            ]
            if len(cpus) > 1:
                row.insert(3, S.get(f"cpu.{r.get('cpu', 'same')}", str(r.get("cpu"))))
            table.rows.append(row)
        ax.set_yticks(range(len(cases)), [label(r) for r in cases], fontsize=7.5)
        ax.set_ylim(len(cases) - 0.5, -0.5)  # fastest at the top
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        ax.set_xlabel(S["summary.xlabel"])
        ax.grid(axis="y", visible=False)
        from matplotlib.lines import Line2D

        peers = [p for p in PEER_COLOR if any(r["peer"] == p for r in cases)]
        handles = [
            Line2D(
                [], [], ls="", marker="o", color=PEER_COLOR[p], mec="black", label=peer_label(S, p)
            )
            for p in peers
        ]
        handles.append(Line2D([], [], color="0.3", marker="|", label=S["summary.whisker"]))
        if old_shown:
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    marker="o",
                    mfc="none",
                    mec="black",
                    label=f"p50 ({S['compare.old']})",
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        ax.set_title(S["summary.title"])
        png, w, h = render_png(fig, foot)
    return Plot(
        "latency-summary",
        S["summary.title"],
        S["summary.caption"],
        png,
        w,
        h,
        table,
        lesson="communication",
    )


def size_plot(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """p50 latency and MB/s against message size, one line per payload channel and peer."""
    results = [r for r in ok_results(doc) if r.get("payload", True)]
    cpu = _ref_cpu(results) if results else "same"
    series: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        if str(r.get("cpu", "same")) == cpu:
            series.setdefault((r["channel"], r["peer"]), []).append(r)
    series = {k: sorted(v, key=lambda r: r["size"]) for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    import matplotlib

    channels = sorted({ch for ch, _ in series})
    # One hue per channel (tab10's ten are the most distinct); peers differ by line style.
    cmap = matplotlib.colormaps["tab10" if len(channels) <= 10 else "tab20"]
    old_idx = _index(old)
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], "p50", "MB/s"])
    with new_figure(7.8, 4.6, font) as fig:
        lat_ax, bw_ax = fig.subplots(1, 2)
        for (ch, peer), rs in sorted(series.items()):
            color = cmap(channels.index(ch) % cmap.N)
            style = "-" if peer == "process" else "--"
            label = f"{ch} ({peer_label(S, peer)})"
            sizes = [int(r["size"]) for r in rs]
            lat_ax.plot(
                sizes,
                [r["latency_ns"]["p50"] / 1e3 for r in rs],
                style,
                marker="o",
                ms=3,
                color=color,
                label=label,
            )
            bw = [(s, r["mb_per_s"]) for s, r in zip(sizes, rs, strict=True) if r.get("mb_per_s")]
            bw_ax.plot([s for s, _ in bw], [b for _, b in bw], style, marker="o", ms=3, color=color)
            olds = [
                (s, old_idx[result_key(r)])
                for s, r in zip(sizes, rs, strict=True)
                if result_key(r) in old_idx
            ]
            if olds:
                lat_ax.plot(
                    [s for s, _ in olds],
                    [o["latency_ns"]["p50"] / 1e3 for _, o in olds],
                    ":",
                    color=color,
                    alpha=0.6,
                    lw=1,
                )
            for r in rs:
                table.rows.append(
                    [
                        ch,
                        peer_label(S, peer),
                        fmt_bytes(r["size"]),
                        fmt_ns(r["latency_ns"]["p50"]),
                        fmt_rate(r.get("mb_per_s")),
                    ]
                )
        ticks = sorted({max(int(r["size"]), 0) for rs in series.values() for r in rs})
        for ax in (lat_ax, bw_ax):
            size_axis(ax, ticks)
            ax.set_yscale("log")
            log_axis(ax.yaxis)
            ax.set_xlabel(S["axis.size_bytes"])
        lat_ax.set_ylabel(S["axis.p50_us"])
        bw_ax.set_ylabel(S["axis.mb_s"])
        lat_ax.set_title(S["size.lat_title"], loc="left")
        bw_ax.set_title(S["size.bw_title"], loc="left")
        if old_idx:
            lat_ax.plot([], [], ":", color="0.4", label=S["compare.dotted"])
        fig.legend(loc="outside right upper", fontsize=7.5)
        png, w, h = render_png(fig, foot)
    return Plot("size-sweep", S["size.title"], S["size.caption"], png, w, h, table)


def placement_plot(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """p50 at each --cpu placement, for the channels measured at more than one, compared at
    the smallest message size measured at every placement (never 0 bytes against 64)."""
    runs: dict[tuple[str, str], dict[str, dict[int, Result]]] = {}
    for r in ok_results(doc):
        ch, peer, cpu, size = result_key(r)
        runs.setdefault((ch, peer), {}).setdefault(cpu, {})[size] = r
    by: dict[tuple[str, str], dict[str, Result]] = {}
    for key, per_cpu in runs.items():
        common = set.intersection(*(set(sizes) for sizes in per_cpu.values()))
        if len(per_cpu) > 1 and common:
            by[key] = {cpu: sizes[min(common)] for cpu, sizes in per_cpu.items()}
    groups = sorted(by)
    if not groups:
        return None
    cpus = [c for c in CPU_ORDER if any(c in by[g] for g in groups)]
    colors = {"same": "tab:green", "split": "tab:red", "none": "tab:gray"}
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], *[S[f"cpu.{c}"] for c in cpus]])
    with new_figure(7.8, 1.4 + 0.5 * len(groups), font) as fig:
        ax = fig.subplots()
        width = 0.8 / len(cpus)
        for i, (ch, peer) in enumerate(groups):
            row = [ch, peer_label(S, peer), fmt_bytes(next(iter(by[ch, peer].values()))["size"])]
            for j, cpu in enumerate(cpus):
                at = by[ch, peer].get(cpu)
                row.append(fmt_ns(at["latency_ns"]["p50"]) if at else "–")
                if at is not None:
                    ax.barh(
                        i + (j - (len(cpus) - 1) / 2) * width,
                        at["latency_ns"]["p50"] / 1e3,
                        width * 0.92,
                        color=colors.get(cpu, "tab:purple"),
                        label=S[f"cpu.{cpu}"] if i == 0 else None,
                    )
            table.rows.append(row)
        ax.set_yticks(range(len(groups)), [f"{c} ({peer_label(S, p)})" for c, p in groups])
        ax.invert_yaxis()  # first channel and first placement at the top, as in the legend
        ax.set_xlabel(S["axis.p50_lin_us"])
        ax.grid(axis="y", visible=False)
        fig.legend(loc="outside lower center", ncols=len(cpus), frameon=False)
        ax.set_title(S["place.title"])
        png, w, h = render_png(fig, foot)
    return Plot(
        "placement", S["place.title"], S["place.caption"], png, w, h, table, lesson="ctx-switch"
    )


def stream_results(doc: Doc) -> list[Result]:
    """Results of ``bench --mode stream``: one-way messages per second, no round trips."""
    return [r for r in doc["results"] if not r.get("error") and r.get("messages_per_s")]


def stream_plot(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot:
    """Every streamed case, fastest first: messages per second on a log axis, coloured by
    peer, with each batch's rate as a tick (their spread says how steady the stream was)."""
    cases = sorted(stream_results(doc), key=lambda r: -r["messages_per_s"])
    before = {result_key(r): r for r in stream_results(old)} if old else {}
    best = cases[0]["messages_per_s"]
    table = Table(
        [S["col.channel"], S["col.peer"], S["col.size"], S["tp.rate"], "MB/s", S["col.ratio"]]
    )
    with new_figure(7.8, 1.3 + 0.19 * len(cases), font) as fig:
        ax = fig.subplots()
        for i, r in enumerate(cases):
            color = PEER_COLOR.get(r["peer"], "tab:gray")
            batches = [b for b in r.get("batch_messages_per_s") or [] if b and b > 0]
            ax.plot(batches, [i] * len(batches), "|", color=color, ms=6, alpha=0.6)
            ax.plot([r["messages_per_s"]], [i], "o", color=color, ms=5.5, mec="black", mew=0.5)
            o = before.get(result_key(r))
            if o is not None:
                ax.plot([o["messages_per_s"]], [i], "o", mfc="none", mec="black", ms=7, mew=1)
            table.rows.append(
                [r["channel"], peer_label(S, r["peer"]), fmt_bytes(r["size"]),
                 fmt_count(r["messages_per_s"]), fmt_rate(r.get("mb_per_s")),
                 f"{best / r['messages_per_s']:.2f}×"]
            )  # fmt: skip
        labels = [f"{r['channel']} ({peer_label(S, r['peer'])}) · {fmt_bytes(r['size'])}"
                  for r in cases]  # fmt: skip
        ax.set_yticks(range(len(cases)), labels, fontsize=7.5)
        ax.set_ylim(len(cases) - 0.5, -0.5)
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        ax.set_xlabel(S["stream.xlabel"])
        ax.grid(axis="y", visible=False)
        ax.set_title(S["stream.title"])
        png, w, h = render_png(fig, foot)
    return Plot("stream-summary", S["stream.title"], S["stream.caption"], png, w, h, table)


def bench_plots(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> list[Plot]:
    """Every bench plot the document has data for, in reading order."""
    streamed = [stream_plot(doc, old, S, foot, font)] if stream_results(doc) else []
    if not ok_results(doc):
        return streamed
    plots = [summary_plot(doc, old, S, foot, font), *streamed, nines_plot(doc, old, S, foot, font)]
    plots += [
        p
        for p in (size_plot(doc, old, S, foot, font), placement_plot(doc, old, S, foot, font))
        if p is not None
    ]
    return plots
