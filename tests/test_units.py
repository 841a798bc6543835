"""The one formatter of sizes and durations: figures read as a person writes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemonkit.units import fmt_count, fmt_ns, fmt_number, fmt_range, fmt_size, fmt_size_short


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0 ns"),
        (812, "812 ns"),
        (999.6, "1 µs"),  # rounds up into the next unit, never "1e+03 ns"
        (5214, "5.21 µs"),
        (50_000_000, "50 ms"),  # not 50000 µs
        (3_590_000, "3.59 ms"),
        (1.2e9, "1.2 s"),
    ],
)
def test_durations_take_the_unit_that_suits_them(ns: float, text: str) -> None:
    assert fmt_ns(ns) == text


def test_a_range_gives_each_end_its_own_unit_when_the_median_s_does_not_fit() -> None:
    assert fmt_range(2500, 2340, 2520) == "2.5 µs (2.34–\u20602.52)"
    assert fmt_range(260_000, 250_000, 3_590_000) == "260 µs (250 µs–\u20603.59 ms)"


@given(st.floats(min_value=0, max_value=1e15, allow_nan=False))
def test_no_figure_is_in_exponent_notation_nor_longer_than_three_digits_before_the_point(
    ns: float,
) -> None:
    number, unit = fmt_ns(ns).split(" ")
    assert "e" not in number and unit in ("ns", "µs", "ms", "s")
    if unit != "s":
        assert len(number.split(".")[0]) <= 3, number
    assert "e" not in fmt_number(ns / 1e6)


def test_sizes_in_binary_units() -> None:
    assert [fmt_size(n) for n in (0, 64, 4096, 1 << 20, 1000)] == [
        "0 B",
        "64 B",
        "4 KiB",
        "1 MiB",
        "1000 B",
    ]
    assert [fmt_size_short(n) for n in (0, 64, 4096, 1 << 20, 1536)] == [
        "0",
        "64",
        "4K",
        "1M",
        "1.5K",
    ]
    assert fmt_count(187_412.4) == "187,412"
