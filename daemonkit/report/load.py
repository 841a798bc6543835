"""Read the result documents a report is drawn from, refuse anything else in one line, and
fold runs from one machine together.

A report is a view of data that was measured before: the versioned JSON written by
``daemonkit bench --json`` (schema ``daemonkit.bench/1``) and ``daemonkit lessons --json``
(``daemonkit.lessons/1`` and ``/2``). Nothing here measures; it only checks that a document
is one of ours and of a version this code knows, so that a plot never draws a guess from a
field that means something else.

*Kernel path*: one ``open``/``read`` per file; nothing else touches the kernel.
*Lifetime*: the documents live in memory for the length of the report.
*See also*: json(3), the schemas in issues 3 and 4.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemonkit.errors import DaemonkitError, UsageError

__all__ = [
    "BENCH_SCHEMA",
    "KNOWN_SCHEMAS",
    "LESSONS_SCHEMA",
    "LESSONS_SCHEMAS",
    "ReportInputError",
    "check_doc",
    "doc_date",
    "load_doc",
    "machine_summary",
    "merge_docs",
    "result_key",
    "same_machine",
    "schema_kind",
]

Doc = dict[str, Any]
BENCH_SCHEMA = "daemonkit.bench/1"
LESSONS_SCHEMA = "daemonkit.lessons/2"  # verdicts as keys and figures, rendered when shown
LESSONS_SCHEMAS = ("daemonkit.lessons/1", LESSONS_SCHEMA)  # /1: sentences frozen in its language
KNOWN_SCHEMAS = (BENCH_SCHEMA, *LESSONS_SCHEMAS)


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


def same_machine(a: Doc, b: Doc) -> bool:
    """Whether two documents name the same machine (host, CPU model, CPU count)."""
    ma, mb = a.get("machine") or {}, b.get("machine") or {}
    keys = ("hostname", "cpu_model")
    return all(ma.get(k) == mb.get(k) for k in keys) and _cpus(ma) == _cpus(mb)


def _cpus(m: Mapping[str, Any]) -> object:
    return m.get("cpu_count", m.get("cpus_online"))


def machine_summary(doc: Doc) -> str:
    """One line naming the machine a document was measured on."""
    m = doc.get("machine")
    if not isinstance(m, Mapping):
        return "machine unknown"
    parts = [m.get(k) for k in ("hostname", "cpu_model", "cpu_count", "kernel", "python")]
    if _cpus(m):
        parts[2] = f"{_cpus(m)} CPUs"
    line = ", ".join(str(p) for p in parts if p)
    return line or ", ".join(f"{k}={v}" for k, v in list(m.items())[:4] if not isinstance(v, dict))


def doc_date(doc: Doc) -> str:
    """When the document was recorded, as the producer wrote it (or ``date unknown``)."""
    for holder in (doc, doc.get("machine") or {}):
        for key in ("date", "created", "timestamp", "started"):
            if holder.get(key):
                return str(holder[key])
    return "date unknown"


def merge_docs(docs: list[Doc]) -> list[Doc]:
    """Fold documents of one schema from one machine into one: bench runs (one per ``--cpu``
    placement becomes one placement comparison) and lessons run one by one. A later result
    replaces an earlier one with the same key (bench: channel, peer, cpu, size; lessons: name).
    """
    out: list[Doc] = []
    for doc in docs:
        kind = schema_kind(doc)
        into = next((d for d in out if schema_kind(d) == kind and same_machine(d, doc)), None)
        if into is None:
            out.append(dict(doc))
            continue
        items, key = ("results", result_key) if kind == "bench" else ("lessons", _lesson_key)
        merged = {key(x): x for x in into[items]}
        merged.update({key(x): x for x in doc[items]})
        into[items] = list(merged.values())
        into["created"] = max(str(into.get("created", "")), str(doc.get("created", "")))
    return out


def _lesson_key(lesson: Doc) -> str:
    return str(lesson["name"])


def result_key(r: Doc) -> tuple[str, str, str, int]:
    """(channel, peer, cpu, size): what identifies a bench result within a run and across runs."""
    return (str(r["channel"]), str(r["peer"]), str(r.get("cpu", "same")), int(r["size"]))
