"""What every lesson hands back, and its versioned JSON document (``daemonkit.lessons/2``).

A lesson is one module that satisfies :class:`daemonkit.lessons.base.Lesson`: ``run``
measures and returns its typed measurements; ``verdicts`` is a *pure* function of those and
of the machine facts (:func:`daemonkit.machine.facts`), so a test can feed it synthetic numbers
on either side of every band boundary; ``tables`` turns the measurements into :class:`Table`
rows for the terminal. No lesson prints; no verdict is canned text.

Facts about the document:

* A verdict is stored as keys and figures (:class:`daemonkit.lessons.verdict.Verdict`), never
  as a sentence: :mod:`daemonkit.lessons.render` writes the sentence when it is shown, in the
  reader's language. The document therefore has no language; ``lang`` records only what the
  terminal showed.
* ``machine`` holds :func:`daemonkit.machine.describe`, with its ``facts`` (PCID, KPTI, the
  caches, the GIL): the same block as bench documents.
* ``inconclusive`` means the interval of the deciding quantity straddles a band boundary, or
  the experiment could not measure what the claim needs: never a quiet stand-in for a failure.

Kernel path: none (data and formatting only). Lifetime: none.

See also: the pyperf JSON format (raw samples plus machine metadata), which this mirrors.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from daemonkit.errors import DaemonkitError
from daemonkit.lessons.verdict import Verdict
from daemonkit.machine import describe

__all__ = [
    "SCHEMA",
    "LessonResult",
    "Spread",
    "Table",
    "Tick",
    "spread",
    "to_json",
    "write_json",
]

SCHEMA = "daemonkit.lessons/2"

# Called by a lesson after each unit of work, with the string-table key of what it just did.
Tick = Callable[[str], None]


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


class Spread(TypedDict):
    """One measured point's repeats: median, quartiles, range, count, and the repeats."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int
    samples: list[float]


def spread(values: Sequence[float]) -> Spread:
    """Median, quartiles, range and the repeats themselves, of one measured point.

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
        "samples": list(values),  # the repeats themselves: what the intervals resample
    }


def to_json(
    results: Sequence[LessonResult], lang: str, quick: bool, machine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The versioned document: per lesson its claims, raw measurements and verdicts (as data)."""
    lessons = [
        {
            "name": r.name,
            "claims": list(r.claims),
            "seconds": round(r.seconds, 3),
            "measurements": r.measurements,
            "verdicts": [v.as_json() for v in r.verdicts],
        }
        for r in results
    ]
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lang": lang,  # what the terminal showed; the document itself has no language
        "quick": quick,
        "machine": machine if machine is not None else describe(),
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
