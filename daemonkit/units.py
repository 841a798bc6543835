"""Sizes, durations and rates as a person writes them: one formatter for every view.

The terminal tables, the lessons' verdict text and the report's tables and axes all print
figures through these functions, so one measurement reads the same everywhere:

* a duration keeps three significant figures in the unit where it has at most three digits
  before the point (``812 ns``, ``5.21 µs``, ``3.59 ms``, ``1.2 s``), never ``3.59e+03`` nor
  ``50000 µs``; a value that rounds up to 1000 moves to the next unit (``1 ms``, not
  ``1e+03 µs``);
* a size is spelled in binary units, either the way the bench options take it (``64``,
  ``4K``, ``1M``) or the way prose writes it (``64 B``, ``4 KiB``, ``1 MiB``);
* a plain number never switches to exponent notation (``1,234,567``, ``0.0012``).

Like pyperf's ``_formatter`` module, this is ground floor: it imports nothing of daemonkit.

*Kernel path*: none (string formatting only).
*Lifetime*: none.
*See also*: IEC 80000-13 (KiB, MiB), the SI prefixes (µ, m).
"""

from __future__ import annotations

import math

__all__ = [
    "NBSP",
    "TIME_UNITS",
    "fmt_count",
    "fmt_ns",
    "fmt_number",
    "fmt_range",
    "fmt_rate",
    "fmt_size",
    "fmt_size_short",
    "time_unit",
]

# Units of a duration, largest first, with their size in nanoseconds.
TIME_UNITS = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))
NBSP = "\u00a0"  # a no-break space keeps a number on its unit's line in a narrow table cell

_BINARY = (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10))


def fmt_number(x: float, digits: int = 3) -> str:
    """*x* with *digits* significant figures, in positional notation: ``3590``, ``0.0012``,
    ``2.5``, ``812`` (never ``3.59e+03``). Whole numbers of four figures or more get thousands
    separators (``12,300``)."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - exponent, 0)
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > exponent:  # 9.996 -> 10.0
        decimals = max(decimals - 1, 0)
    if decimals == 0:
        return f"{round(x):,}"
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".")


def _significant(x: float, digits: int = 3) -> float:
    return 0.0 if x == 0 else round(x, digits - 1 - math.floor(math.log10(abs(x))))


def time_unit(ns: float) -> tuple[str, float]:
    """The unit a duration of *ns* is written in, and that unit's size in ns: the largest
    in which it is at least 1 once rounded (999.6 µs is written 1 ms)."""
    a = abs(ns)
    for unit, scale in TIME_UNITS:
        if math.isfinite(a) and _significant(a / scale) >= 1:
            return unit, scale
    return "ns", 1.0


def fmt_ns(ns: float, sep: str = " ") -> str:
    """A duration given in ns: three significant figures in the unit that suits it,
    ``5.21 µs``. *sep* goes between number and unit (:data:`NBSP` in HTML tables)."""
    unit, scale = time_unit(ns)
    return f"{fmt_number(ns / scale)}{sep}{unit}"


def fmt_range(median: float, lo: float, hi: float, sep: str = " ") -> str:
    """A median and its range, ``2.5 µs (2.34–2.52)``; when the ends need another unit than
    the median each end carries its own, ``260 µs (250 µs–3.59 ms)``."""
    unit, scale = time_unit(median)
    # U+2060 (word joiner) after the dash: a narrow cell breaks before "(", not inside it.
    if time_unit(lo)[0] == unit and time_unit(hi)[0] == unit:
        ends = f"{fmt_number(lo / scale)}–\u2060{fmt_number(hi / scale)}"
    else:
        ends = f"{fmt_ns(lo, sep)}–\u2060{fmt_ns(hi, sep)}"
    return f"{fmt_number(median / scale)}{sep}{unit} ({ends})"


def fmt_size_short(n: float) -> str:
    """A size the way the bench options spell it: ``0``, ``64``, ``4K``, ``64K``, ``1M``
    (``1.5K`` for a size that is not a whole number of KiB)."""
    for unit, scale in _BINARY:
        if n >= scale and n % scale == 0:
            return f"{int(n) // scale}{unit}"
    if n >= 1 << 10:
        return f"{fmt_number(n / (1 << 10))}K"
    return fmt_number(n) if n != int(n) else str(int(n))


def fmt_size(n: int, sep: str = " ") -> str:
    """A byte count in the largest binary unit that divides it: ``64 B``, ``4 KiB``,
    ``1 MiB``."""
    for unit, scale in _BINARY:
        if n >= scale and n % scale == 0:
            return f"{n // scale}{sep}{unit}iB"
    return f"{n}{sep}B"


def fmt_rate(mb_s: float | None) -> str:
    """MB/s: whole numbers from 100 up, three figures below, a dash for none."""
    if not mb_s:
        return "–"
    return f"{mb_s:,.0f}" if mb_s >= 100 else fmt_number(mb_s)


def fmt_count(x: float) -> str:
    """A count or a rate of events: whole, with thousands separators (``187,412``)."""
    return f"{round(x):,}"
