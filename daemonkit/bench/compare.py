"""Two runs side by side: per case the p50 and p99 ratios, whether each is significant, and
the geometric mean over the cases.

A ratio is *new / old*: below 1 the new run is faster. Its uncertainty comes from a
two-level bootstrap over what each run stored, :data:`RESAMPLES` times:

1. the *batches* are drawn with replacement. The bench measures in timed batches
   (:mod:`daemonkit.bench.measure`): round trips inside one batch share its conditions (the
   other load, the CPU's frequency, where the scheduler woke the peer) and are not
   independent; the batch is the unit of repetition. The resampled batches' median of the
   batch medians (``batch_p50_ns``) against the run's gives the factor by which this
   resample's conditions move the whole distribution;
2. the *round trips* are drawn with replacement (a multinomial draw over the stored
   histogram's buckets, :mod:`daemonkit.bench.distribution`, the same as resampling the raw
   samples at 0.1 % resolution); the percentile of that resample, times the factor of 1.,
   is the replicate.

The ratio of the two runs' replicates is recorded; the 2.5th and 97.5th percentiles of those
ratios are the 95 % interval, their standard deviation the ``±`` printed beside the ratio
(as hyperfine prints one). Resampling round trips alone (step 2, all a run without batch
medians allows) treats them as independent and shows only the noise of sampling them; drift
between batches, which the run itself shows, was outside the interval. Step 1 puts it in;
counting the batch medians' own sampling noise a second time makes the interval a little
wider than it need be (at most by a factor of about 1.4 where batches do not drift), which
errs towards "not significant". Measured on the shared two-CPU test machine
(``docs/results/2026-11-29-compare-method.md``), two pairs of repeat ``--quick`` runs of four
channels: the p50 ratios' ± went from 0.001-0.05 to 0.002-0.08; without a margin 6 and 5 of
8 cases were "not significant" instead of 3 and 2; with the margin, 8 of 8 either way;
``--cpu same`` against ``--cpu split``: 8 of 8 "slower" either way.

Why a bootstrap and not Mann-Whitney: the figures compared are percentiles (p50, p99), and
the bootstrap answers the question about exactly those ("how sure is this p99 ratio?"), for
the tail as well as the middle, and with an interval, not only a p-value. Mann-Whitney tests
whether one whole distribution tends to lie above the other: with thousands of round trips
it calls a shift of a fraction of a percent "significant", says nothing about p99, and gives
no interval to print.

Why a margin as well: the bootstrap sees only the noise *within* a run, batches included.
Two runs of the same command on one machine also differ by what changes *between* runs
(where the kernel placed the buffers, the CPU's frequency, other load), which no resampling
of one run can see. A change is called significant only when the whole 95 % interval lies
beyond a margin (:data:`NOISE_MARGIN`, 10 %, ``--margin`` to change it) on the same side;
the margin is printed with every comparison. Ten percent because repeat runs of the same
command on a shared two-CPU machine differed by up to 13 % at p50 (pipe, ``--quick``), and
with the batches resampled 2 and 3 of 8 cases of two repeat pairs still lay outside their
intervals: a smaller margin would call that noise a change.

*Kernel path*: none (arithmetic on two documents).
*Lifetime*: plain values.
*See also*: Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13;
hyperfine's ``--export-json`` and its "... times faster than ..." summary; pyperf's
``compare_to``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daemonkit.bench.distribution import Distribution, HdrError, decode, percentiles
from daemonkit.bench.results import Result, Run
from daemonkit.errors import DaemonkitError, DocumentError
from daemonkit.machine import identity_differences, noted_differences

__all__ = [
    "CONFIDENCE",
    "NOISE_MARGIN",
    "RESAMPLES",
    "SCHEMA",
    "CaseComparison",
    "Comparison",
    "MachineMismatchError",
    "Ratio",
    "compare_runs",
    "distributions",
    "document",
    "faster_line",
    "pairs",
    "refuse_other_machine",
    "speedup",
]

SCHEMA = "daemonkit.compare/1"
RESAMPLES = 2000
CONFIDENCE = 95.0  # percent: the interval a ratio must lie beyond NOISE_MARGIN with
NOISE_MARGIN = 0.10  # run-to-run variation on one machine that within-run noise cannot show
_SEED = 20261129  # a fixed seed: the same two documents always give the same verdicts
Batches = Sequence[float] | None  # a case's batch medians (``batch_p50_ns``), where stored


class MachineMismatchError(DaemonkitError):
    """The runs came from different machines and the comparison was not forced."""


@dataclass(frozen=True)
class Ratio:
    """new / old of one figure, with its bootstrap spread; ``None`` fields: not computable
    (a run without a stored distribution)."""

    value: float
    sd: float | None = None
    low: float | None = None
    high: float | None = None
    margin: float = NOISE_MARGIN

    @property
    def significant(self) -> bool | None:
        """True when the whole interval lies beyond the noise margin on one side."""
        if self.low is None or self.high is None:
            return None
        return self.high < 1 / (1 + self.margin) or self.low > 1 + self.margin

    @property
    def verdict(self) -> str:
        if self.significant is None:
            return "no distribution"
        if not self.significant:
            return "not significant"
        return "faster" if self.value < 1 else "slower"

    def to_json(self) -> dict[str, Any]:
        return {
            "ratio": round(self.value, 4),
            "sd": None if self.sd is None else round(self.sd, 4),
            "low": None if self.low is None else round(self.low, 4),
            "high": None if self.high is None else round(self.high, 4),
            "significant": self.significant,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class CaseComparison:
    """One case measured in both runs."""

    new: Result
    old: Result
    p50: Ratio
    p99: Ratio

    def to_json(self) -> dict[str, Any]:
        r, o = self.new, self.old
        assert r.latency_ns is not None and o.latency_ns is not None
        return {
            "channel": r.channel,
            "peer": r.peer,
            "old_peer": o.peer,
            "cpu": r.cpu,
            "size": r.size,
            "old_ns": {"p50": o.latency_ns.p50, "p99": o.latency_ns.p99},
            "new_ns": {"p50": r.latency_ns.p50, "p99": r.latency_ns.p99},
            "p50": self.p50.to_json(),
            "p99": self.p99.to_json(),
        }


@dataclass
class Comparison:
    """Every case two runs share, the geometric mean of their p50 ratios, and notes."""

    old_name: str
    new_name: str
    cases: list[CaseComparison]
    geomean: Ratio | None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        """The hyperfine-style line: which run is faster, by how much, over how many cases."""
        if self.geomean is None:
            return None
        n = len(self.cases)
        what = f"geometric mean of the p50 ratios of {n} case{'s' if n != 1 else ''}"
        if self.geomean.significant is False:
            what += ": not significant"
        return f"{_faster(self.new_name, self.old_name, self.geomean)} ({what})"

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old_name,
            "new": self.new_name,
            "cases": [c.to_json() for c in self.cases],
            "geomean_p50": None if self.geomean is None else self.geomean.to_json(),
            "summary": self.summary(),
            "notes": self.notes,
        }


def document(
    comparisons: Sequence[Comparison], created: str, command: list[str], margin: float
) -> dict[str, Any]:
    """The ``daemonkit.compare/1`` document of one or more comparisons."""
    return {
        "schema": SCHEMA,
        "created": created,
        "command": command,
        "method": {
            "statistic": "ratio new/old of p50 and of p99",
            "test": "two-level bootstrap: timed batches (their medians), then round trips "
            "(the stored HDR histograms)",
            "resamples": RESAMPLES,
            "confidence_percent": CONFIDENCE,
            "noise_margin": margin,
        },
        "comparisons": [c.to_json() for c in comparisons],
    }


def refuse_other_machine(old: Run, new_machine: dict[str, Any], old_name: str) -> None:
    """Raise :class:`MachineMismatchError` if *old* was measured on another machine."""
    diffs = identity_differences(old.machine, new_machine)
    if diffs:
        raise MachineMismatchError(
            f"{old_name} was measured on another machine ({'; '.join(diffs)}); "
            "use --force to compare anyway"
        )


def distributions(run: Run, where: str) -> dict[tuple[str, str, str, int], Distribution]:
    """The stored distribution of every measured case that has one; a ``latency_hdr`` that
    cannot be decoded, or holds another number of round trips than ``iterations``, is a
    one-line input error."""
    out = {}
    for i, r in enumerate(run.results):
        if r.latency_hdr is None or r.latency_ns is None:
            continue
        field_ = f"{where}: results[{i}].latency_hdr"
        try:
            d = decode(r.latency_hdr)
        except HdrError as err:
            raise DocumentError(f"{field_}: {err}") from err
        if d.total != r.iterations:
            raise DocumentError(
                f"{field_}: holds {d.total} round trips where iterations says {r.iterations}"
            )
        out[r.key] = d
    return out


def compare_runs(
    old: Run, new: Run, old_name: str, new_name: str, margin: float = NOISE_MARGIN
) -> Comparison:
    """Compare every case measured in both runs. A case pairs with the same (channel, peer,
    cpu, size) in the other run; failing that, with the one case of the same channel, peer
    and size (runs at two ``--cpu`` placements); a ``remote`` case with the same case against
    a local forked peer, and back (the cost of crossing a host boundary)."""
    rng = np.random.default_rng(_SEED)
    old_d, new_d = distributions(old, old_name), distributions(new, new_name)
    measured = [r for r in old.results if r.latency_ns is not None]
    before = {r.key: r for r in measured}
    shape = Counter((r.channel, r.peer, r.size) for r in measured)
    any_cpu = {
        (r.channel, r.peer, r.size): r for r in measured if shape[r.channel, r.peer, r.size] == 1
    }
    cases: list[CaseComparison] = []
    logs: list[np.ndarray] = []  # per case, the bootstrap replicates of log(p50 ratio)
    point_logs: list[float] = []
    for r in new.results:
        o = (
            before.get(r.key)
            or before.get(_across_hosts_key(r))
            or any_cpu.get((r.channel, r.peer, r.size))
        )
        if r.latency_ns is None or o is None or o.latency_ns is None:
            continue
        dn, do = new_d.get(r.key), old_d.get(o.key)
        b50 = b99 = None
        if dn is not None and do is not None:
            batches = (o.batch_p50_ns, r.batch_p50_ns)
            b50, b99 = _boot_all(do, dn, (50.0, 99.0), rng, batches)
            logs.append(np.log(b50))
        point_logs.append(math.log(r.latency_ns.p50 / o.latency_ns.p50))
        cases.append(
            CaseComparison(
                r,
                o,
                _ratio(r.latency_ns.p50 / o.latency_ns.p50, b50, margin),
                _ratio(r.latency_ns.p99 / o.latency_ns.p99, b99, margin),
            )
        )
    notes = [f"differs: {d}" for d in identity_differences(old.machine, new.machine)]
    notes += [f"changed: {d}" for d in noted_differences(old.machine, new.machine)]
    if not cases:
        notes.append("no case was measured in both runs")
    streamed = [r for r in (*old.results, *new.results) if r.messages_per_s is not None]
    if streamed:  # bench --mode stream: rates, not round trips
        notes.append(
            f"{len(streamed)} stream-mode result(s) (messages/s, no round trips) left out: "
            "compare compares round-trip latencies"
        )
    geomean = None
    if cases:
        boot = np.exp(np.mean(logs, axis=0)) if len(logs) == len(cases) else None
        geomean = _ratio(math.exp(sum(point_logs) / len(point_logs)), boot, margin)
    if any(c.p50.significant is None for c in cases):
        notes.append("a run without stored distributions (older daemonkit): ratios only")
    return Comparison(old_name, new_name, cases, geomean, notes)


def faster_line(
    a: str,
    da: Distribution,
    b: str,
    db: Distribution,
    batches: tuple[Batches, Batches] = (None, None),
) -> str:
    """``"pipe/process is 1.41 ± 0.03x faster than unix-stream/process"``, p50 against p50,
    the ± from the same bootstrap as :func:`compare_runs` (*batches*: a's and b's batch
    medians, where stored)."""
    rng = np.random.default_rng(_SEED)
    b50 = _boot_all(db, da, (50.0,), rng, batches[::-1])[0]  # a / b: below 1 when a is faster
    return _faster(a, b, _ratio(da.percentile(50.0) / db.percentile(50.0), b50))


def speedup(ratio: Ratio) -> tuple[str, str, str]:
    """*ratio* is a/b of times: ``("1.41", " ± 0.03", "faster")``, how many times faster (or
    slower) a is than b, the spread carried over to that scale."""
    if ratio.value <= 1:
        speed, sd = 1 / ratio.value, (ratio.sd or 0.0) / ratio.value**2
        word = "faster"
    else:
        speed, sd, word = ratio.value, ratio.sd or 0.0, "slower"
    spread = f" ± {sd:.2f}" if sd >= 0.005 else f" ± {sd:.1g}"
    return f"{speed:.2f}", spread if ratio.sd is not None else "", word


def _faster(a: str, b: str, ratio: Ratio) -> str:
    """hyperfine's sentence: ``a is 1.41 ± 0.03x faster than b``."""
    speed, spread, word = speedup(ratio)
    return f"{a} is {speed}{spread}x {word} than {b}"


def _boot_all(
    old: Distribution,
    new: Distribution,
    qs: Sequence[float],
    rng: np.random.Generator,
    batches: tuple[Batches, Batches] = (None, None),
) -> list[np.ndarray]:
    """Per percentile in *qs*, RESAMPLES bootstrap replicates of new/old, all taken from the
    same resamples (one draw per run serves every percentile); *batches*: each run's batch
    medians, resampled as the first level (module docstring)."""
    ro, rn = _resample(old, rng), _resample(new, rng)
    so, sn = _batch_factor(batches[0], rng), _batch_factor(batches[1], rng)
    out: list[np.ndarray] = [
        percentiles(new.values, rn, q) * sn / (percentiles(old.values, ro, q) * so) for q in qs
    ]
    return out


def _batch_factor(medians: Batches, rng: np.random.Generator) -> np.ndarray | float:
    """Per resample, the median of the batch medians drawn with replacement over the run's
    own: how far that resample's batches move the distribution (1 without two batches)."""
    if not medians or len(medians) < 2:
        return 1.0
    m = np.asarray(medians, dtype=float)
    if not np.all(m > 0):
        return 1.0
    drawn = m[rng.integers(0, len(m), size=(RESAMPLES, len(m)))]
    factor: np.ndarray = np.median(drawn, axis=1) / np.median(m)
    return factor


def _resample(d: Distribution, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(d.total, d.counts / d.total, size=RESAMPLES)


def _ratio(point: float, boot: np.ndarray | None, margin: float = NOISE_MARGIN) -> Ratio:
    if boot is None:
        return Ratio(point, margin=margin)
    tail = (100.0 - CONFIDENCE) / 2
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    return Ratio(point, float(np.std(boot, ddof=1)), float(low), float(high), margin)


def _across_hosts_key(r: Result) -> tuple[str, str, str, int]:
    other = {"remote": "process", "process": "remote"}.get(r.peer, r.peer)
    return (r.channel, other, r.cpu, r.size)


def pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """``compare A B C``: B against A, then C against A (the first is the reference)."""
    return [(names[0], n) for n in names[1:]]
