"""Plots of the lessons: lat_ctx curve, placement, creation, message passing; tables for the rest.

Each function reads one lesson of a ``daemonkit.lessons/2`` document (the raw
``measurements`` its experiment returned) and draws it; a lesson this module has no picture
for still gets its measurements as tables, flattened from whatever plain data it holds.

*Kernel path*: none (drawing only). *Lifetime*: a figure lives until its PNG bytes exist.
*See also*: daemonkit.lessons (the producers), lmbench lat_ctx(8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemonkit.report.figure import (
    PEER_COLOR,
    Plot,
    Table,
    fmt_bytes,
    fmt_range,
    log_axis,
    new_figure,
    peer_label,
    render_png,
    size_axis,
)

__all__ = ["lesson_plots", "measurement_tables"]

Lesson = Mapping[str, Any]

CREATION_METHODS = ("thread", "fork", "fork+exec", "posix_spawn")


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Mapping) and {"median", "min", "max"} <= set(v):
        return f"{v['median']:.4g} [{v['min']:.4g}–{v['max']:.4g}]"
    if isinstance(v, list) and len(v) > 8:
        return f"[{len(v)} values]"
    return str(v)


def measurement_tables(m: object, title: str = "") -> list[tuple[str, Table]]:
    """Plain data as tables: a list of records, a record, or a mapping of those, nested."""
    if isinstance(m, list) and m and all(isinstance(x, Mapping) for x in m):
        cols: list[str] = []
        for rec in m:
            cols += [k for k in rec if k not in cols]
        return [(title, Table(cols, [[_cell(rec.get(c, "")) for c in cols] for rec in m]))]
    if not isinstance(m, Mapping) or not m:
        return [] if m in (None, [], {}) else [(title, Table([""], [[_cell(m)]]))]
    scalars = {
        k: v
        for k, v in m.items()
        if not isinstance(v, Mapping | list)
        or (isinstance(v, Mapping) and {"median", "min", "max"} <= set(v))
        or (isinstance(v, list) and not any(isinstance(x, Mapping | list) for x in v))
    }
    out: list[tuple[str, Table]] = []
    if scalars:
        out.append((title, Table(["", ""], [[str(k), _cell(v)] for k, v in scalars.items()])))
    for k, v in m.items():
        if k not in scalars:
            out += measurement_tables(v, f"{title} / {k}" if title else str(k))
    return out


def _spread_row(sp: Mapping[str, float] | None) -> str:
    return fmt_range(sp["median"], sp["min"], sp["max"]) if sp else "–"


def ctx_plot(
    lesson: Lesson, old: Lesson | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """lat_ctx: per-switch cost against working-set size, thread vs process, with the spread."""
    sweep = [
        r
        for r in lesson["measurements"].get("sweep", [])
        if all(isinstance(r.get(k), Mapping) and "switch_ns" in r[k] for k in PEER_COLOR)
    ]
    if not sweep:
        return None
    old_sweep = {r["w"]: r for r in (old or {}).get("measurements", {}).get("sweep", [])}
    ws = [int(r["w"]) for r in sweep]
    table = Table(
        [S["col.ws"], S["peer.thread"], S["peer.process"], S["col.ratio_pt"], S["col.switches"]]
    )
    with new_figure(7.8, 3.9, font) as fig:
        ax = fig.subplots()
        for kind, color in PEER_COLOR.items():
            med = [r[kind]["switch_ns"]["median"] / 1e3 for r in sweep]
            ax.fill_between(
                ws,
                [r[kind]["switch_ns"]["min"] / 1e3 for r in sweep],
                [r[kind]["switch_ns"]["max"] / 1e3 for r in sweep],
                color=color,
                alpha=0.2,
                lw=0,
            )
            ax.plot(ws, med, "-o", color=color, ms=4, label=peer_label(S, kind))
            olds = [
                (w, old_sweep[w][kind]["switch_ns"]["median"] / 1e3)
                for w in ws
                if kind in old_sweep.get(w, {}) and "switch_ns" in old_sweep[w][kind]
            ]
            if olds:
                ax.plot(
                    *zip(*olds, strict=True),
                    "--",
                    color=color,
                    alpha=0.7,
                    lw=1,
                    label=f"{peer_label(S, kind)} ({S['compare.old']})",
                )
        ax.axhline(0, color="0.5", lw=0.8)
        size_axis(ax, ws)
        # Costs run from about a microsecond at W=0 to hundreds at 16 MiB, and a cost left
        # after subtracting a noisy baseline can be negative: symlog shows all of it.
        ax.set_yscale("symlog", linthresh=1, linscale=0.6)
        lowest = min(r[k]["switch_ns"]["min"] / 1e3 for r in sweep for k in PEER_COLOR)
        ax.set_ylim(bottom=min(0.0, lowest * 1.5))  # below zero only if a cost is negative
        log_axis(ax.yaxis)  # after the limits: a log locator would lift a bottom of 0
        ax.set_xlabel(S["axis.ws"])
        ax.set_ylabel(S["axis.per_switch_us"])
        ax.set_title(S["ctx.title"])
        ax.legend(loc="upper left")
        png, w, h = render_png(fig, foot)
    for r in sweep:
        t, p = r["thread"]["switch_ns"]["median"], r["process"]["switch_ns"]["median"]
        table.rows.append(
            [
                fmt_bytes(r["w"]),
                _spread_row(r["thread"]["switch_ns"]),
                _spread_row(r["process"]["switch_ns"]),
                f"{p / t:.2f}" if t > 0 else "–",
                f"{r['thread']['switches_per_rtt']:.2g} / {r['process']['switches_per_rtt']:.2g}",
            ]
        )
    return Plot(
        "ctx-switch-curve", S["ctx.title"], S["ctx.caption"], png, w, h, table, lesson="ctx-switch"
    )


def ctx_placement_plot(
    lesson: Lesson, old: Lesson | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """The W=0 ping-pong at each placement, thread vs process, median with min-max bars."""
    rows = [r for r in lesson["measurements"].get("placement", []) if "unavailable" not in r]
    if not rows:
        return None
    table = Table([S["col.placement"], S["peer.thread"], S["peer.process"]])
    with new_figure(7.8, 3.2, font) as fig:
        ax = fig.subplots()
        for j, (kind, color) in enumerate(PEER_COLOR.items()):
            xs = [i + (j - 0.5) * 0.38 for i in range(len(rows))]
            sp = [r[kind]["rtt_ns"] for r in rows]
            med = [x["median"] / 1e3 for x in sp]
            err = [
                [m - x["min"] / 1e3 for m, x in zip(med, sp, strict=True)],
                [x["max"] / 1e3 - m for m, x in zip(med, sp, strict=True)],
            ]
            ax.bar(xs, med, 0.36, color=color, yerr=err, capsize=3, label=peer_label(S, kind))
        ax.set_xticks(
            range(len(rows)), [S.get(f"cpu.{r['placement']}", r["placement"]) for r in rows]
        )
        ax.set_ylabel(S["axis.rtt_us"])
        ax.grid(axis="x", visible=False)
        ax.set_title(S["ctx.placement_title"])
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        png, w, h = render_png(fig, foot)
    for r in lesson["measurements"]["placement"]:
        name = S.get(f"cpu.{r['placement']}", r["placement"])
        if "unavailable" in r:
            table.rows.append([name, str(r["unavailable"]), ""])
        else:
            table.rows.append(
                [name, _spread_row(r["thread"]["rtt_ns"]), _spread_row(r["process"]["rtt_ns"])]
            )
    return Plot(
        "ctx-switch-placement",
        S["ctx.placement_title"],
        S["ctx.placement_caption"],
        png,
        w,
        h,
        table,
        lesson="ctx-switch",
    )


def creation_plot(
    lesson: Lesson, old: Lesson | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """Per-operation cost of each creation method, at each parent size (median, p10-p90)."""
    sizes = [r for r in lesson["measurements"].get("sizes", []) if "rss" in r]
    methods = [k for k in CREATION_METHODS if sizes and all(k in r for r in sizes)]
    if not methods:
        return None
    colors = ["tab:green", "tab:purple", "tab:brown", "tab:olive"]
    table = Table([S["col.rss"], S["col.op"], S["col.per_op"], S["col.vs_thread"]])
    width = 0.8 / len(sizes)
    with new_figure(7.8, 3.6, font) as fig:
        ax = fig.subplots()
        for j, r in enumerate(sizes):
            xs = [i + (j - (len(sizes) - 1) / 2) * width for i in range(len(methods))]
            med = [r[k]["median"] / 1e3 for k in methods]
            err = [
                [m - r[k]["p10"] / 1e3 for m, k in zip(med, methods, strict=True)],
                [r[k]["p90"] / 1e3 - m for m, k in zip(med, methods, strict=True)],
            ]
            # Points with whiskers, not bars: on a log axis a bar's length means nothing.
            ax.errorbar(
                xs,
                med,
                yerr=err,
                fmt="o",
                ms=7,
                capsize=4,
                color=colors[j % len(colors)],
                label=S["create.parent"].format(rss=fmt_bytes(_round_mib(r["rss"]))),
            )
            for k in methods:
                table.rows.append(
                    [
                        fmt_bytes(_round_mib(r["rss"])),
                        k,
                        fmt_range(r[k]["median"], r[k]["p10"], r[k]["p90"]),
                        f"{r[k]['median'] / r['thread']['median']:.3g}×" if "thread" in r else "–",
                    ]
                )
        ax.set_xticks(range(len(methods)), methods)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_ylabel(S["axis.per_op_us"])
        ax.grid(axis="x", visible=False)
        ax.set_title(S["create.title"])
        ax.legend(loc="upper left")
        png, w, h = render_png(fig, foot)
    return Plot(
        "creation", S["create.title"], S["create.caption"], png, w, h, table, lesson="creation"
    )


def communication_plot(
    lesson: Lesson, old: Lesson | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """Round trip against message size per route: thread handoffs solid, process dashed."""
    import matplotlib

    routes = [
        r
        for r in lesson["measurements"].get("routes", [])
        if any("rtt_ns" in p for p in r.get("points", []))
    ]
    if not routes:
        return None
    sizes = sorted({int(p["size"]) for r in routes for p in r["points"]})
    cmap = matplotlib.colormaps["tab10"]
    table = Table([S["col.channel"], S["col.peer"], S["col.size"], S["col.rtt_range"]])
    with new_figure(7.8, 4.0, font) as fig:
        ax = fig.subplots()
        for i, r in enumerate(routes):
            pts = [p for p in r["points"] if "rtt_ns" in p]
            xs = [int(p["size"]) for p in pts]
            color, style = cmap(i % cmap.N), "-" if r.get("group") == "thread" else "--"
            ax.fill_between(
                xs,
                [p["rtt_ns"]["min"] / 1e3 for p in pts],
                [p["rtt_ns"]["max"] / 1e3 for p in pts],
                color=color,
                alpha=0.15,
                lw=0,
            )
            ax.plot(
                xs,
                [p["rtt_ns"]["median"] / 1e3 for p in pts],
                style,
                marker="o",
                ms=3,
                color=color,
                label=f"{r['channel']} ({peer_label(S, r['peer'])})",
            )
        for r in lesson["measurements"]["routes"]:
            for p in r.get("points", []):
                cell = _spread_row(p["rtt_ns"]) if "rtt_ns" in p else _short(p.get("error"))
                table.rows.append(
                    [
                        r["channel"],
                        peer_label(S, r["peer"]),
                        fmt_bytes(p["size"]),
                        cell,
                    ]
                )
        size_axis(ax, sizes)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_xlabel(S["axis.size_bytes"])
        ax.set_ylabel(S["axis.p50_us"])
        ax.set_title(S["comm.title"])
        fig.legend(loc="outside right upper", fontsize=7.5)
        png, w, h = render_png(fig, foot)
    return Plot(
        "communication",
        S["comm.title"],
        S["comm.caption"],
        png,
        w,
        h,
        table,
        lesson="communication",
    )


def _short(text: object, limit: int = 48) -> str:
    """An error message cut to fit a table cell (the full text is in the JSON)."""
    t = "–" if text is None else str(text)
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _round_mib(n: float) -> int:
    """Resident sizes vary by a few pages from run to run; label them to the MiB."""
    return max(1, round(n / (1 << 20))) << 20


DRAWERS = {
    "ctx-switch": (ctx_plot, ctx_placement_plot),
    "creation": (creation_plot,),
    "communication": (communication_plot,),
}


def lesson_plots(
    lesson: Lesson, old: Lesson | None, S: Mapping[str, str], foot: str, font: str | None
) -> list[Plot]:
    """The plots this lesson's measurements support (none for lessons without a picture)."""
    if not isinstance(lesson.get("measurements"), Mapping):
        return []
    drawn = (draw(lesson, old, S, foot, font) for draw in DRAWERS.get(str(lesson["name"]), ()))
    return [p for p in drawn if p is not None]
