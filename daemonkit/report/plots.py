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

__all__ = ["bench_plots", "failed_results", "ok_results"]

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


def _cdf_points(r: Result) -> tuple[list[float], list[float], bool]:
    """(latency µs, fraction ≤, exact): from the histogram, else from the percentiles."""
    hist = r.get("histogram")
    if isinstance(hist, Mapping) and hist.get("counts") and sum(hist["counts"]) > 0:
        edges, counts = hist["edges_ns"], hist["counts"]
        total, run = float(sum(counts)), 0
        xs, ys = [edges[0] / 1e3], [0.0]
        for edge, c in zip(edges[1:], counts, strict=True):
            run += c
            xs.append(edge / 1e3)
            ys.append(run / total)
        return xs, ys, True
    lat = r["latency_ns"]
    pts = [("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)]
    have = [(lat[k] / 1e3, q) for k, q in pts if k in lat]
    return [x for x, _ in have], [q for _, q in have], False


def _cdf_legend(fig: Any, S: Mapping[str, str], with_old: bool, exact: bool) -> None:
    """One legend for all panels: peer colours, the p50/p99 markers, the older run."""
    from matplotlib.lines import Line2D

    approx = "" if exact else " " + S["cdf.approx"]
    handles = [
        Line2D([], [], color=c, lw=1.6, label=peer_label(S, p) + approx)
        for p, c in PEER_COLOR.items()
    ]
    handles += [
        Line2D([], [], ls="", marker="o", color="0.5", mec="k", label="p50"),
        Line2D([], [], ls="", marker="v", color="0.5", mec="k", label="p99"),
    ]
    if with_old:
        handles.append(Line2D([], [], color="0.4", ls="--", label=S["compare.old"]))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def cdf_plot(doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None) -> Plot:
    ref = _reference(ok_results(doc))
    old_idx = _index(old)
    channels = sorted(
        {ch for ch, _ in ref},
        key=lambda c: min(ref[c, p]["latency_ns"]["p50"] for p in PEER_COLOR if (c, p) in ref),
    )
    cols = min(3, len(channels))
    rows = -(-len(channels) // cols)
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], "p50", "p99", "p99.9"])
    all_exact, any_old = True, False
    title = S["cdf.title"].format(cpu=S.get("cpu." + _ref_cpu(ok_results(doc)), "?"))
    with new_figure(7.8, 0.9 + 1.9 * rows, font) as fig:
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
        for ax, ch in zip(axes.flat, channels, strict=False):
            for peer, color in PEER_COLOR.items():
                r = ref.get((ch, peer))
                if r is None:
                    continue
                xs, ys, exact = _cdf_points(r)
                all_exact &= exact
                if exact:
                    ax.step(xs, ys, where="post", color=color, lw=1.5)
                else:
                    ax.plot(xs, ys, ":o", color=color, ms=3)
                o = old_idx.get(result_key(r))
                if o is not None:
                    any_old = True
                    ox, oy, _ = _cdf_points(o)
                    ax.step(ox, oy, where="post", color=color, lw=1, ls="--", alpha=0.7)
                lat = r["latency_ns"]
                ax.plot([lat["p50"] / 1e3], [0.5], "o", color=color, ms=5, mec="black", mew=0.6)
                ax.plot([lat["p99"] / 1e3], [0.99], "v", color=color, ms=6, mec="black", mew=0.6)
                table.rows.append(
                    [
                        ch,
                        peer_label(S, peer),
                        fmt_bytes(r["size"]),
                        fmt_ns(lat["p50"]),
                        fmt_ns(lat["p99"]),
                        fmt_ns(lat.get("p999", lat["max"])),
                    ]
                )
            ax.set_title(ch, fontsize=9.5, loc="left")
            ax.set_xscale("log")
            log_axis(ax.xaxis, subs=(1.0, 3.0))  # small panels: 1-3-10 keeps the labels apart
            ax.set_ylim(0, 1.03)
        for ax in list(axes.flat)[len(channels) :]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel(S["cdf.ylabel"])
        for i, ax in enumerate(axes.flat[: len(channels)]):
            if i + cols >= len(channels):  # lowest panel of its column: label the axis
                ax.tick_params(labelbottom=True)
                ax.set_xlabel(S["axis.latency_us"])
        fig.suptitle(title)
        _cdf_legend(fig, S, any_old, all_exact)
        png, w, h = render_png(fig, foot)
    return Plot("latency-cdf", title, S["cdf.caption"], png, w, h, table)


def bars_plot(doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None) -> Plot:
    ref = _reference(ok_results(doc))
    old_idx = _index(old)
    channels = sorted(
        {ch for ch, _ in ref},
        key=lambda c: -min(ref[c, p]["latency_ns"]["p50"] for p in PEER_COLOR if (c, p) in ref),
    )
    fastest = min(r["latency_ns"]["p50"] for r in ref.values())
    # A linear axis, so bar lengths compare honestly; a p99 tail far beyond every median is
    # cut at the edge (its value is printed at the bar's end and in the table).
    cap = (
        min(
            max(r["latency_ns"]["p99"] for r in ref.values()),
            4 * max(r["latency_ns"]["p50"] for r in ref.values()),
        )
        / 1e3
    )
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], "p50", "p99", S["col.ratio"]])
    with new_figure(7.8, 1.2 + 0.42 * len(channels), font) as fig:
        ax = fig.subplots()
        old_shown = False
        for i, ch in enumerate(channels):
            for j, (peer, color) in enumerate(PEER_COLOR.items()):
                r = ref.get((ch, peer))
                if r is None:
                    continue
                y, lat = i + (j - 0.5) * 0.38, r["latency_ns"]
                first = i == 0 or all((c, peer) not in ref for c in channels[:i])
                lab = peer_label(S, peer)
                p99 = min(lat["p99"] / 1e3, cap)
                ax.barh(
                    y, p99, 0.36, color=color, alpha=0.35, label=f"{lab} p99" if first else None
                )
                ax.barh(
                    y, lat["p50"] / 1e3, 0.36, color=color, label=f"{lab} p50" if first else None
                )
                clipped = "▸" if lat["p99"] / 1e3 > cap else ""
                ax.text(
                    p99,
                    y,
                    f"{clipped} {fmt_ns(lat['p50'])} / {fmt_ns(lat['p99'])}",
                    va="center",
                    fontsize=7.5,
                )
                o = old_idx.get(result_key(r))
                if o is not None:
                    ax.plot(
                        [o["latency_ns"]["p50"] / 1e3],
                        [y],
                        "k|",
                        ms=11,
                        mew=2,
                        label=None if old_shown else f"p50 ({S['compare.old']})",
                    )
                    old_shown = True
                table.rows.append(
                    [
                        ch,
                        lab,
                        fmt_bytes(r["size"]),
                        fmt_ns(lat["p50"]),
                        fmt_ns(lat["p99"]),
                        f"{lat['p50'] / fastest:.2f}×",
                    ]
                )
        # Notification channels (signals, semaphores, eventfd) carry no bytes: say so.
        no_data = {ch for (ch, _), r in ref.items() if r.get("payload") is False}
        ticks = [f"{ch} ({S['bars.notify']})" if ch in no_data else ch for ch in channels]
        ax.set_yticks(range(len(channels)), ticks)
        ax.set_xlim(0, cap * 1.35)  # room for the value labels
        ax.set_xlabel(S["axis.latency_lin_us"])
        ax.grid(axis="y", visible=False)
        fig.legend(loc="outside lower center", ncols=5, frameon=False)
        ax.set_title(S["bars.title"])
        png, w, h = render_png(fig, foot)
    table.rows.sort(key=lambda row: float(row[-1].rstrip("×")))
    return Plot(
        "latency-bars", S["bars.title"], S["bars.caption"], png, w, h, table, lesson="communication"
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


def bench_plots(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> list[Plot]:
    """Every bench plot the document has data for, in reading order."""
    if not ok_results(doc):
        return []
    plots = [cdf_plot(doc, old, S, foot, font), bars_plot(doc, old, S, foot, font)]
    plots += [
        p
        for p in (size_plot(doc, old, S, foot, font), placement_plot(doc, old, S, foot, font))
        if p is not None
    ]
    return plots
