"""Every round trip of a case, kept as an HDR histogram, and the statistics drawn from it.

A result keeps its whole distribution in ``latency_hdr``: an HdrHistogram (Gil Tene's
High Dynamic Range histogram, through the ``hdrhistogram`` package) with three significant
digits from 1 ns to one hour, in the format's standard compressed base64 encoding
(``HISTF...``), which HdrHistogram's tools in other languages read too. Three digits: every
value is kept within 0.1 %, in a few kilobytes however many round trips there were; and two
histograms add up exactly, so runs merge. Comparisons (:mod:`daemonkit.bench.compare`) take
their percentiles *and* their significance tests from this same data.

*Kernel path*: none (arithmetic on the samples after the timed loop).
*Lifetime*: plain values.
*See also*: http://hdrhistogram.org, the ``hdrhistogram`` package (``hdrh``).
"""

from __future__ import annotations

import binascii
import struct
import zlib
from array import array
from dataclasses import dataclass

import numpy as np

from daemonkit.errors import DaemonkitError

__all__ = ["HDR_DIGITS", "HDR_HIGHEST_NS", "Distribution", "HdrError", "decode", "encode"]

HDR_DIGITS = 3  # significant decimal digits kept: every value within 0.1 %
HDR_HIGHEST_NS = 3_600_000_000_000  # one hour; a longer round trip is recorded as one hour


class HdrError(DaemonkitError):
    """A ``latency_hdr`` string that is not an HdrHistogram encoding."""

    exit_code = 2  # bad input


@dataclass(frozen=True)
class Distribution:
    """The distinct values of a histogram (ns, ascending) and how often each was seen."""

    values: np.ndarray  # float64, the midpoint of each non-empty bucket
    counts: np.ndarray  # int64, same length

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile(self, q: float) -> float:
        """The value at or below which *q* percent of the samples lie."""
        return float(percentiles(self.values, self.counts[np.newaxis, :], q)[0])


def encode(samples: array[int]) -> str:
    """Record *samples* (ns) in an HDR histogram and return its compressed base64 form."""
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, HDR_HIGHEST_NS, HDR_DIGITS)
    a = np.frombuffer(samples, dtype=np.int64)
    values, counts = np.unique(np.clip(a, 1, HDR_HIGHEST_NS), return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        h.record_value(v, c)
    encoded: bytes = h.encode()
    return encoded.decode("ascii")


def decode(text: str) -> Distribution:
    """The distribution an :func:`encode` string holds; :class:`HdrError` if it holds none."""
    from hdrh.codec import HdrCookieException, HdrHistogramSettingsException, HdrLengthException
    from hdrh.histogram import HdrHistogram

    # What a damaged encoding raises: the format's own checks, base64, zlib, the header.
    damaged = (
        HdrCookieException,
        HdrLengthException,
        HdrHistogramSettingsException,
        ValueError,
        TypeError,
        IndexError,
        OverflowError,
        MemoryError,
        zlib.error,
        binascii.Error,
        struct.error,
        UnicodeError,
    )
    try:
        h = HdrHistogram.decode(text.encode("ascii"))
    except damaged as e:
        raise HdrError(f"not an HdrHistogram ({type(e).__name__})") from e
    if h is None or h.get_total_count() <= 0:
        raise HdrError("an empty HdrHistogram")
    counts = np.ctypeslib.as_array(h.counts)[: h.counts_len].astype(np.int64)
    index = np.flatnonzero(counts)
    low = [h.get_value_from_index(int(i)) for i in index]
    values = np.array([(v + h.get_highest_equivalent_value(v)) / 2 for v in low], dtype=np.float64)
    return Distribution(values, counts[index])


def percentiles(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """Per row of *counts* (one histogram per row over the same *values*), the value at
    percentile *q*: the first value whose cumulative count reaches q % of the row's total."""
    cum = np.cumsum(counts, axis=1)
    target = np.ceil(cum[:, -1] * q / 100.0).clip(min=1)
    idx = np.array([np.searchsorted(row, t) for row, t in zip(cum, target, strict=True)])
    out: np.ndarray = values[np.minimum(idx, len(values) - 1)]
    return out
