"""What every plot of the report shares: the figure frame, the footer, the PNG, the table.

Figures are drawn with matplotlib's object API on an Agg canvas (``Figure`` +
``FigureCanvasAgg``), never through ``pyplot``: no global state, no display needed, and the
backend is fixed here rather than by whatever ``MPLBACKEND`` says. matplotlib is imported only
inside these functions, so the rest of the CLI runs without the ``plot`` extra.

Each plot carries its own numbers as a :class:`Table`: the report prints them beside the
picture, so a reader never has to read a value off an axis.

*Kernel path*: none beyond writing the PNG files (``open``/``write``/``close``).
*Lifetime*: a figure is dropped as soon as its PNG bytes exist (no pyplot registry keeps it).
*See also*: the matplotlib Agg backend documentation.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from daemonkit import units
from daemonkit.units import NBSP, fmt_number, fmt_rate
from daemonkit.units import fmt_size_short as fmt_bytes

__all__ = [
    "BENCH_PEER_COLOR",
    "DISPLAY_DPI",
    "PEER_COLOR",
    "Plot",
    "Table",
    "cjk_font",
    "fmt_bytes",
    "fmt_ns",
    "fmt_range",
    "fmt_rate",
    "footer_text",
    "log_axis",
    "new_figure",
    "peer_label",
    "render_png",
    "size_axis",
]

# Figures are sized in inches at 100 CSS pixels per inch and saved at twice that, so they
# are 1:1 readable at 100% zoom and still sharp on a high-density screen.
DISPLAY_DPI = 100
SAVE_DPI = 200
FOOTER_IN = 0.26

# One colour per peer kind in every plot of the report.
PEER_COLOR = {"thread": "tab:blue", "process": "tab:orange"}
# Bench results may also have the running demo daemon or a remote 'serve' as the peer.
BENCH_PEER_COLOR = {**PEER_COLOR, "daemon": "tab:green", "remote": "tab:purple"}

# Families that carry CJK glyphs, tried in order when the report is in Chinese.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
    "AR PL UMing CN",
    "Droid Sans Fallback",
)
CJK_FILE_HINTS = ("cjk", "wqy", "sourcehan", "uming", "droidsansfallback")


@dataclass
class Table:
    """The numbers behind a plot, already formatted for reading."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Plot:
    """One rendered figure and what the report shows around it."""

    key: str  # anchor in the page and stem of the PNG file
    title: str
    caption: str  # one or two sentences: what the picture shows and how to read it
    png: bytes
    width_px: int  # CSS size at 100% zoom (the PNG itself holds twice as many pixels)
    height_px: int
    table: Table
    lesson: str | None = None  # the lesson whose verdict is shown beside this plot
    notes: list[str] = field(default_factory=list)


def peer_label(S: Mapping[str, str], peer: str) -> str:
    """``thread`` / ``process`` in the report's language."""
    return S.get(f"peer.{peer}", peer)


# Figures in the report's cells keep number and unit on one line (a no-break space).


def fmt_ns(ns: float) -> str:
    """A duration for a table cell: :func:`daemonkit.units.fmt_ns`, unbreakable."""
    return units.fmt_ns(ns, NBSP)


def fmt_range(median: float, lo: float, hi: float) -> str:
    """A median and its range for a table cell: :func:`daemonkit.units.fmt_range`."""
    return units.fmt_range(median, lo, hi, NBSP)


def cjk_font() -> str | None:
    """The first installed font family with Chinese glyphs, or None."""
    from matplotlib import font_manager

    fm = font_manager.fontManager
    found = next((f for f in CJK_FAMILIES if f in {x.name for x in fm.ttflist}), None)
    if found is None:
        # matplotlib caches its font list: a font installed after the cache was built is
        # only seen once added by file.
        for path in font_manager.findSystemFonts():
            if any(hint in path.lower() for hint in CJK_FILE_HINTS):
                fm.addfont(path)
        found = next((f for f in CJK_FAMILIES if f in {x.name for x in fm.ttflist}), None)
    return found


def log_axis(axis: Any, base: int = 10, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """A log axis labelled with plain numbers (20, 50, 100) rather than powers (10^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, SymmetricalLogLocator

    if base == 2:
        axis.set_major_locator(LogLocator(base=2, numticks=12))
        axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_bytes(v) if v >= 1 else ""))
    elif axis.get_scale() == "symlog":  # a 0 tick too, and negatives if the axis has any
        axis.set_major_locator(SymmetricalLogLocator(axis.get_transform(), subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(v)))
    else:
        axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
        axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(v)))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def size_axis(ax: Any, sizes: list[int]) -> None:
    """Bytes on a symlog x axis (log above 1 byte, linear below, so 0 has a place), ticked
    at the sizes measured."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("symlog", base=2, linthresh=1, linscale=0.5)
    ax.set_xticks(sizes, [fmt_bytes(w) for w in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    lo, hi = min(sizes), max(sizes)
    ax.set_xlim(lo / 2 if lo > 0 else -0.4, hi * 1.6 if hi > 0 else 1)


def footer_text(machine: str, date: str) -> str:
    return f"{machine}  ·  {date}"


@contextmanager
def new_figure(width_in: float, height_in: float, font: str | None = None) -> Iterator[Any]:
    """A matplotlib (sub)figure on an Agg canvas, with the report's house style applied."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(
        {
            "font.size": 9.5,
            "axes.titlesize": 10.5,
            "axes.labelsize": 9.5,
            "legend.fontsize": 8.5,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        if font is not None:  # restored with the rest when the context ends
            matplotlib.rcParams["font.family"] = [font, "DejaVu Sans"]
        root = Figure(figsize=(width_in, height_in), dpi=DISPLAY_DPI, layout="constrained")
        FigureCanvasAgg(root)
        # The plot lives in the upper subfigure; a quarter-inch strip below holds the footer,
        # so no legend placed "outside" the axes can land on it.
        grid = root.add_gridspec(2, 1, height_ratios=(height_in - FOOTER_IN, FOOTER_IN))
        main = root.add_subfigure(grid[0])
        root.add_subfigure(grid[1])
        yield main


def render_png(fig: Any, footer: str) -> tuple[bytes, int, int]:
    """Stamp the footer (machine and date) on ``fig`` and return PNG bytes and CSS size."""
    root = fig.figure
    root.subfigs[1].text(0.006, 0.3, footer, fontsize=7.5, color="0.35", ha="left", va="bottom")
    w_in, h_in = root.get_size_inches()
    buf = io.BytesIO()
    root.savefig(buf, format="png", dpi=SAVE_DPI, facecolor="white")
    return buf.getvalue(), round(w_in * DISPLAY_DPI), round(h_in * DISPLAY_DPI)
