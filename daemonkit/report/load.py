"""Read the result documents a report is drawn from, and refuse anything else in one line.

A report is a view of data that was measured before: the versioned JSON written by
``daemonkit bench --json`` (schema ``daemonkit.bench/1``) and ``daemonkit lessons --json``
(``daemonkit.lessons/1``). Nothing here measures; it only checks that a document is one of
ours and of a version this code knows, so that a plot never draws a guess from a field that
means something else.

*Kernel path*: one ``open``/``read`` per file; nothing else touches the kernel.
*Lifetime*: the documents live in memory for the length of the report.
*See also*: json(3), the schemas in issues 3 and 4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daemonkit.errors import DaemonkitError, UsageError

__all__ = [
    "BENCH_SCHEMA",
    "KNOWN_SCHEMAS",
    "LESSONS_SCHEMA",
    "ReportInputError",
    "check_doc",
    "load_doc",
    "schema_kind",
]

BENCH_SCHEMA = "daemonkit.bench/1"
LESSONS_SCHEMA = "daemonkit.lessons/1"
KNOWN_SCHEMAS = (BENCH_SCHEMA, LESSONS_SCHEMA)


class ReportInputError(DaemonkitError):
    """A results file that is missing, unreadable, not JSON, or of a schema we do not know."""


def schema_kind(doc: dict[str, Any]) -> str:
    """``"bench"`` or ``"lessons"``: the family of a checked document."""
    return "bench" if doc["schema"] == BENCH_SCHEMA else "lessons"


def check_doc(doc: object, where: str = "document") -> dict[str, Any]:
    """Return ``doc`` if it is a bench or lessons document we can draw, else raise.

    Only the keys the report reads are checked; anything extra is carried along untouched.
    """
    if not isinstance(doc, dict):
        raise ReportInputError(
            f"{where}: not a daemonkit results document (top level not an object)"
        )
    schema = doc.get("schema")
    if schema not in KNOWN_SCHEMAS:
        known = ", ".join(KNOWN_SCHEMAS)
        raise ReportInputError(f"{where}: unknown schema {schema!r} (this report reads {known})")
    if schema == BENCH_SCHEMA:
        results = doc.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise ReportInputError(f"{where}: 'results' must be a list of objects")
        for i, r in enumerate(results):
            missing = [k for k in ("channel", "peer", "size") if k not in r]
            if missing:
                raise ReportInputError(f"{where}: results[{i}] lacks {', '.join(missing)}")
    else:
        lessons = doc.get("lessons")
        if not isinstance(lessons, list) or not all(isinstance(x, dict) for x in lessons):
            raise ReportInputError(f"{where}: 'lessons' must be a list of objects")
        for i, lesson in enumerate(lessons):
            if "name" not in lesson:
                raise ReportInputError(f"{where}: lessons[{i}] has no name")
    return doc


def load_doc(path: Path) -> dict[str, Any]:
    """Read and check one results file; every failure is a one-line :class:`ReportInputError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise UsageError(f"{path}: no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ReportInputError(f"{path}: cannot read: {reason}") from err
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportInputError(f"{path}: not JSON (line {err.lineno}: {err.msg})") from err
    return check_doc(doc, str(path))
