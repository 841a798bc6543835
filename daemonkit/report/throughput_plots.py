"""The plot of a throughput run: messages per second and MB/s against message size.

A view of one ``daemonkit.throughput/1`` document (``daemonkit throughput --json``): per size,
how fast pipelined ``zmq-tcp`` messages streamed to a ``daemonkit serve``. Sizes that failed
are listed by the page, not drawn.

*Kernel path*: none (drawing only). *Lifetime*: a figure lives until its PNG bytes exist.
*See also*: :mod:`daemonkit.remote.throughput` (the producer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemonkit.report.figure import (
    Plot,
    Table,
    fmt_bytes,
    fmt_ns,
    fmt_rate,
    log_axis,
    new_figure,
    render_png,
    size_axis,
)
from daemonkit.units import fmt_count

__all__ = ["throughput_plot"]

Doc = dict[str, Any]


def throughput_plot(
    doc: Doc, old: Doc | None, S: Mapping[str, str], foot: str, font: str | None
) -> Plot | None:
    """Messages/s and MB/s against size (log-log), the older run dotted; None if no size ran."""
    rows = sorted((r for r in doc["results"] if "error" not in r), key=lambda r: r["size"])
    if not rows:
        return None
    before = {r["size"]: r for r in (old or {}).get("results", []) if "error" not in r}
    table = Table(
        [S["col.size"], S["tp.messages"], S["tp.seconds"], S["tp.rate"], "MB/s", S["tp.tail"]]
    )
    title = S["tp.title"].format(where=doc.get("connect", "?"))
    with new_figure(7.8, 3.8, font) as fig:
        rate_ax, mb_ax = fig.subplots(1, 2)
        sizes = [int(r["size"]) for r in rows]
        rate_ax.plot(sizes, [r["messages_per_s"] for r in rows], "-o", ms=3, color="tab:purple")
        mb_ax.plot(sizes, [r["mb_per_s"] for r in rows], "-o", ms=3, color="tab:purple")
        olds = [(s, before[s]) for s in sizes if s in before]
        if olds:
            xs = [s for s, _ in olds]
            rate_ax.plot(xs, [o["messages_per_s"] for _, o in olds], ":", color="0.4",
                         label=S["compare.dotted"])  # fmt: skip
            mb_ax.plot(xs, [o["mb_per_s"] for _, o in olds], ":", color="0.4")
            fig.legend(loc="outside lower center", frameon=False)
        for ax, label in ((rate_ax, S["tp.rate"]), (mb_ax, S["axis.mb_s"])):
            size_axis(ax, sizes)
            ax.set_yscale("log")
            log_axis(ax.yaxis)
            ax.set_xlabel(S["axis.size_bytes"])
            ax.set_ylabel(label)
        fig.suptitle(title)
        png, w, h = render_png(fig, foot)
    for r in rows:
        table.rows.append(
            [
                fmt_bytes(r["size"]),
                fmt_count(r["messages"]),
                fmt_ns(r["seconds"] * 1e9),
                fmt_count(r["messages_per_s"]),
                fmt_rate(r["mb_per_s"]),
                fmt_ns(r["tail_ns"]),
            ]
        )
    return Plot("throughput", title, S["tp.caption"], png, w, h, table)
