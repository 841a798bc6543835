"""What every lesson hands back, and the two views of it: rich tables and versioned JSON.

A lesson is a module with three functions over plain data (listed in
:mod:`daemonkit.commands.lessons`):
``run`` measures and returns a dict of raw numbers; ``verdicts`` is a *pure* function of that
dict, so a test can feed it synthetic numbers on either side of a threshold; ``tables`` turns
the dict into :class:`Table` rows for the terminal. No lesson prints; no verdict is canned text.

Facts about the verdicts:

* Every :class:`Verdict` names a string-table key for its sentence and another for its
  threshold, plus the measured numbers that fill both, so the English and Chinese reports say
  the same thing and the threshold is always printed beside the figures it was applied to.
* ``inconclusive`` is used when the experiment could not measure what the claim needs (a
  missing channel, no second CPU): it is never a quiet stand-in for a failure.

Kernel path: none (data and formatting only). Lifetime: none.

See also: the pyperf JSON format (raw samples plus machine metadata), which this mirrors.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daemonkit.errors import DaemonkitError
from daemonkit.lessons.text import tr
from daemonkit.machine import describe

__all__ = [
    "SCHEMA",
    "Label",
    "LessonResult",
    "Table",
    "Tick",
    "Verdict",
    "spread",
    "to_json",
    "write_json",
]

SCHEMA = "daemonkit.lessons/1"

Label = Literal["holds", "partly holds", "does not hold", "inconclusive"]

# Called by a lesson after each unit of work, with the string-table key of what it just did.
Tick = Callable[[str], None]


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict: the label, and the keys + numbers of its sentence and threshold."""

    claim: str  # "C2"
    label: Label
    text: str  # string-table key of the sentence
    threshold: str  # string-table key of the threshold
    args: dict[str, Any] = field(default_factory=dict)  # the measured figures both quote
    extra: tuple[str, ...] = ()  # further sentences (keys), filled from the same figures

    def render(self, lang: str) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "label": self.label,
            "label_text": tr(lang, "label." + self.label),
            # Chinese sentences end in "。" and follow each other without a space.
            "text": ("" if lang == "zh" else " ").join(
                tr(lang, k, **self.args) for k in (self.text, *self.extra)
            ),
            "threshold": tr(lang, self.threshold, **self.args),
            "figures": self.args,
        }


@dataclass(frozen=True)
class Table:
    """A terminal table: a title key, column keys, and rows of already formatted cells."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class LessonResult:
    """One lesson's run: its name, the claims it tests, the raw measurements, the verdicts."""

    name: str
    claims: tuple[str, ...]
    measurements: dict[str, Any]
    verdicts: list[Verdict]
    seconds: float


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and range of repeated measurements of one point.

    On a shared machine a repeat now and then lands on a busy CPU: the range shows those
    outliers, the interquartile range [q1, q3] is what noise comparisons use.
    """
    if not values:
        raise ValueError("no values")
    q1, _, q3 = (
        statistics.quantiles(values, n=4, method="inclusive")
        if len(values) > 1
        else [values[0]] * 3
    )
    return {
        "median": statistics.median(values),
        "q1": q1,
        "q3": q3,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """True when two points' interquartile ranges overlap: the difference is within noise."""
    return a["q1"] <= b["q3"] and b["q1"] <= a["q3"]


def to_json(results: Sequence[LessonResult], lang: str, quick: bool) -> dict[str, Any]:
    """The versioned document: per lesson its claim, method, raw measurements and verdicts."""
    lessons = []
    for r in results:
        rendered = [v.render(lang) for v in r.verdicts]
        lessons.append(
            {
                "name": r.name,
                "claims": list(r.claims),
                "claim": tr(lang, f"claim.{r.name}"),
                "method": tr(lang, f"method.{r.name}"),
                "seconds": round(r.seconds, 3),
                "measurements": r.measurements,
                "verdict": rendered[0],
                "verdicts": rendered,
            }
        )
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lang": lang,
        "quick": quick,
        "machine": describe(),  # the same metadata as bench runs
        "lessons": lessons,
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write *doc* to *path* ("-" for standard output)."""
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if str(path) == "-":
        print(text, end="")
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DaemonkitError(f"cannot write {path}: {exc.strerror}") from exc
