"""Statistics of round-trip samples, computed after the timed loop from the raw samples.

A round trip is summarised by its order statistics (min, p50, p90, p99, p99.9, max) plus
mean and standard deviation, and by a log-spaced histogram: latencies spread over decades
(a 5 µs pipe, a 200 µs TCP round trip, a rare 10 ms preemption), so bins of equal width on a
log scale keep every decade readable with a few dozen counts. Bin edges lie on one fixed grid
(``10**(k/20)`` ns), so histograms from different runs line up and a later report can draw
cumulative distributions without the raw samples.

Facts about the timer:

* ``time.perf_counter_ns`` reads ``CLOCK_MONOTONIC`` through the vDSO: no system call, but
  each read still costs tens of nanoseconds of interpreter work. :func:`timer_overhead_ns`
  measures what an *empty* round trip records with the very loop shape of the timed loops;
  every sample includes it once.

*Kernel path*: none beyond the ``clock_gettime`` reads of :func:`timer_overhead_ns`.
*Lifetime*: plain values.
*See also*: clock_gettime(2), vdso(7).
"""

from __future__ import annotations

import math
import time
from array import array
from dataclasses import dataclass

import numpy as np

__all__ = ["BINS_PER_DECADE", "Histogram", "Latency", "histogram", "latency", "timer_overhead_ns"]

BINS_PER_DECADE = 20
_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class Latency:
    """Order statistics, mean and standard deviation of round trips, in ns."""

    min: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: int
    mean: float
    stdev: float


@dataclass(frozen=True)
class Histogram:
    """Counts between consecutive edges (``len(edges_ns) == len(counts) + 1``)."""

    edges_ns: list[float]
    counts: list[int]


def _as_numpy(samples: array[int]) -> np.ndarray:
    return np.frombuffer(samples, dtype=np.int64)  # a view: no copy of the samples


def latency(samples: array[int]) -> Latency:
    """Summarise *samples* (ns); there must be at least one."""
    a = _as_numpy(samples)
    p50, p90, p99, p999 = (float(x) for x in np.percentile(a, _PERCENTILES))
    return Latency(
        min=int(a.min()),
        p50=round(p50, 1),
        p90=round(p90, 1),
        p99=round(p99, 1),
        p999=round(p999, 1),
        max=int(a.max()),
        mean=round(float(a.mean()), 1),
        stdev=round(float(a.std(ddof=1)), 1) if len(a) > 1 else 0.0,
    )


def histogram(samples: array[int]) -> Histogram:
    """Count *samples* in log-spaced bins, from the bin holding the minimum to the maximum's."""
    a = _as_numpy(samples)
    lo_ns, hi_ns = max(int(a.min()), 1), max(int(a.max()), 1)
    lo = math.floor(math.log10(lo_ns) * BINS_PER_DECADE)
    hi = math.ceil(math.log10(hi_ns) * BINS_PER_DECADE)
    # log10 is rounded: widen by a bin where the float edge misses an extreme sample.
    if 10 ** (lo / BINS_PER_DECADE) > a.min():
        lo -= 1
    if 10 ** (hi / BINS_PER_DECADE) < a.max() or hi == lo:
        hi += 1
    edges = 10.0 ** (np.arange(lo, hi + 1) / BINS_PER_DECADE)
    edges[0] = min(edges[0], float(a.min()))  # a 0 ns sample has no logarithm: first bin from 0
    counts, _ = np.histogram(a, bins=edges)  # the last bin includes its right edge
    return Histogram([round(float(e), 3) for e in edges], [int(c) for c in counts])


def timer_overhead_ns(n: int = 20_000) -> float:
    """Median ns an empty round trip records: two clock reads and a store, nothing between."""
    clock = time.perf_counter_ns
    samples = array("q", bytes(8 * n))
    for i in range(n):
        t0 = clock()
        samples[i] = clock() - t0
    return float(np.median(_as_numpy(samples)))
