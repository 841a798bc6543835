"""The one verdict engine of the lessons: a deciding quantity, its interval, effect-size bands.

Every lesson that measures a size of effect decides its claim the same way:

1. It names the **deciding quantity** (C2: process/thread per-switch cost at cache-resident
   working sets; C4: best process channel / best thread handoff at one message size, ...).
2. The quantity's **bootstrap 95 % confidence interval** is computed from the repeated
   measurements (:func:`bootstrap`: each group of repeats resampled with replacement, the
   statistic recomputed, the 2.5th and 97.5th percentiles kept). A fixed seed makes the
   interval a function of the measurements alone.
3. The claim states **effect-size bands** (:class:`Bands`): for "far more", >= 2x holds,
   1.25x-2x partly holds, below 1.25x does not hold.
4. :func:`decide`: when the whole interval lies in one band, that band is the label; when it
   straddles a boundary the label is ``inconclusive`` and the interval is printed with it.
   A label that could flip on the next run is reported as undecided, never as a flip.

Lessons whose claim is a yes/no fact of the kernel (a write is invisible, a signal coalesced,
a daemon survived) have no interval: :func:`by_checks` gives their label from the checks,
and :func:`combine` folds several decided points into one claim with the same rule everywhere.

A :class:`Verdict` stores keys and figures only: the sentences are rendered when they are
shown (:mod:`daemonkit.lessons.render`), in whatever language the reader asks for.

Kernel path: none (arithmetic on measurements). Lifetime: none.
See also: Efron & Tibshirani, *An Introduction to the Bootstrap* (percentile intervals);
pyperf's ``compare_to`` (a difference is only reported when it is significant).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "LEVEL",
    "Arr",
    "Bands",
    "Decision",
    "Interval",
    "Label",
    "Verdict",
    "bootstrap",
    "by_checks",
    "combine",
    "decide",
    "paired_ratio",
    "ratio_of_medians",
]

Label = Literal["holds", "partly holds", "does not hold", "inconclusive"]
LEVEL = 0.95  # the confidence level of every interval
RESAMPLES = 4000
SEED = 20260  # fixed: the interval depends on the measurements only

Arr = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap confidence interval, from *n* repeats."""

    point: float
    lo: float
    hi: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"point": self.point, "lo": self.lo, "hi": self.hi, "n": self.n, "level": LEVEL}


@dataclass(frozen=True)
class Bands:
    """A claim's effect-size bands: ``>= holds`` holds, ``>= partly`` partly, below: not.

    Set ``partly == holds`` for a claim with no middle band (a plain yes/no threshold).
    """

    partly: float
    holds: float
    unit: str = "x"  # how the quantity and the boundaries are printed: "x" (ratio), "ns"

    def __post_init__(self) -> None:
        if self.partly > self.holds:
            raise ValueError("the partly boundary must not exceed the holds boundary")

    def label_of(self, x: float) -> Label:
        if x >= self.holds:
            return "holds"
        if x >= self.partly:
            return "partly holds"
        return "does not hold"

    def as_dict(self) -> dict[str, Any]:
        return {"partly": self.partly, "holds": self.holds, "unit": self.unit}


def decide(ci: Interval, bands: Bands) -> Label:
    """The band holding the whole interval; ``inconclusive`` when it straddles a boundary."""
    if not (np.isfinite(ci.lo) and np.isfinite(ci.hi)):
        return "inconclusive"
    lo, hi = bands.label_of(ci.lo), bands.label_of(ci.hi)
    return lo if lo == hi else "inconclusive"


@dataclass(frozen=True)
class Decision:
    """A deciding quantity (a key naming it), its interval, its bands and the label they give."""

    quantity: str
    ci: Interval
    bands: Bands
    # The measured points it decides on, language-neutral ("W = 0 B", "512×4 KiB"); joined
    # with the reader's list separator when shown.
    where: tuple[str, ...] = ()

    @property
    def label(self) -> Label:
        return decide(self.ci, self.bands)

    @property
    def straddles(self) -> float | None:
        """The band boundary inside the interval, when the label is ``inconclusive``."""
        for b in (self.bands.partly, self.bands.holds):
            if self.ci.lo < b <= self.ci.hi:
                return b
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "where": list(self.where),
            "label": self.label,
            "interval": self.ci.as_dict(),
            "bands": self.bands.as_dict(),
            "straddles": self.straddles,
        }


def bootstrap(
    groups: Sequence[Sequence[float]],
    stat: Callable[..., Arr],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Percentile bootstrap interval of ``stat(*groups)``.

    Each group (the repeats of one measured point) is resampled independently with
    replacement; *stat* receives one 2-D array per group, shape ``(resamples, len(group))``,
    and returns one value per row. The point estimate is *stat* on the measurements as taken.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("every group needs at least one measurement")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    point = float(stat(*(a[None, :] for a in arrays))[0])
    drawn = [a[rng.integers(0, len(a), size=(resamples, len(a)))] for a in arrays]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.asarray(stat(*drawn), dtype=np.float64)
    alpha = (1 - LEVEL) / 2
    if not np.all(np.isfinite(values)):
        return Interval(point, float("nan"), float("nan"), min(len(a) for a in arrays))
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return Interval(point, float(lo), float(hi), min(len(a) for a in arrays))


def ratio_of_medians(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> Interval:
    """Interval of the geometric mean, over points, of median(numerator) / median(denominator).

    One pair is one measured point (say W=0: process repeats, thread repeats); several pairs
    give one quantity for a range of points. A non-positive median makes the ratio undefined:
    the interval is then NaN and :func:`decide` says ``inconclusive``.
    """
    groups = [g for pair in pairs for g in pair]

    def stat(*arrays: Arr) -> Arr:
        logs = []
        for num, den in zip(arrays[::2], arrays[1::2], strict=True):
            a, b = np.median(num, axis=1), np.median(den, axis=1)
            ok = (a > 0) & (b > 0)
            logs.append(np.where(ok, np.log(np.where(ok, a, 1.0) / np.where(ok, b, 1.0)), np.nan))
        return np.asarray(np.exp(np.mean(logs, axis=0)), dtype=np.float64)

    return bootstrap(groups, stat)


def paired_ratio(pairs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> Interval:
    """Like :func:`ratio_of_medians`, for repeats taken in pairs (numerator and denominator
    measured back to back in each repeat): the ratio is formed within each repeat, so a burst
    of load that slows both halves of a repeat cancels, and the repeats are resampled whole.
    """
    groups = []
    for num, den in pairs:
        if len(num) != len(den):
            raise ValueError("paired repeats need as many numerators as denominators")
        groups.append(
            [a / b if b > 0 and a > 0 else float("nan") for a, b in zip(num, den, strict=True)]
        )

    def stat(*arrays: Arr) -> Arr:
        logs = [np.log(np.median(a, axis=1)) for a in arrays]
        return np.asarray(np.exp(np.mean(logs, axis=0)), dtype=np.float64)

    return bootstrap(groups, stat)


def combine(labels: Iterable[Label]) -> Label:
    """One claim from several decided points: all alike gives that label; any undecided point
    makes the claim undecided; decided points that disagree make it ``partly holds``."""
    seen = list(labels)
    if not seen or "inconclusive" in seen:
        return "inconclusive"
    if len(set(seen)) == 1:
        return seen[0]
    return "partly holds"


def by_checks(checks: Mapping[str, bool], essential: Sequence[str] = ()) -> Label:
    """The label of a yes/no claim: every check passed holds; an *essential* check failed, or
    none passed, does not hold; anything between partly holds."""
    if all(checks.values()):
        return "holds"
    if not any(checks.values()) or any(not checks[k] for k in essential):
        return "does not hold"
    return "partly holds"


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict as data: the label, string keys, the figures that fill them.

    ``text`` and ``threshold`` are string-table keys; ``extra`` further sentences; ``why`` the
    "why on this machine" paragraphs, each chosen by a computed condition. ``figures`` are
    language-neutral (numbers, sizes, times, lists joined at display time). ``decisions`` are
    the intervals and bands the label was decided on (none for a yes/no claim).
    """

    claim: str
    label: Label
    text: str
    threshold: str
    figures: dict[str, Any] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "label": self.label,
            "text": self.text,
            "threshold": self.threshold,
            "extra": list(self.extra),
            "why": list(self.why),
            "figures": self.figures,
            "decisions": [d.as_dict() for d in self.decisions],
        }
