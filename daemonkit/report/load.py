"""Read the result documents a report is drawn from, refuse anything else in one line, and
fold runs from one machine together.

A report is a view of data that was measured before: the versioned JSON written by
``daemonkit bench --json`` (schema ``daemonkit.bench/1``) and ``daemonkit lessons --json``
(``daemonkit.lessons/2``). Nothing here measures; it only checks that a document is one of
ours and of a version this code knows, so that a plot never draws a guess from a field that
means something else.

*Kernel path*: one ``open``/``read`` per file; nothing else touches the kernel.
*Lifetime*: the documents live in memory for the length of the report.
*See also*: :mod:`daemonkit.schemas` (the JSON Schema of each document).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daemonkit.schemas import KINDS, check_document, load_document

__all__ = [
    "DRAWN",
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
DRAWN = ("bench", "lessons", "throughput", "trace")  # the document families the report draws


def schema_kind(doc: dict[str, Any]) -> str:
    """``"bench"``, ``"throughput"``, ``"lessons"`` or ``"trace"``: a checked document's family."""
    return KINDS[doc["schema"]]


def check_doc(doc: object, where: str = "document") -> dict[str, Any]:
    """Return ``doc`` if it is a document the report draws, else raise
    :class:`~daemonkit.errors.DocumentError` naming *where* and the field that is wrong."""
    check_document(doc, where, DRAWN)
    assert isinstance(doc, dict)
    return doc


def load_doc(path: Path) -> dict[str, Any]:
    """Read and check one results file; every failure is one line, exit status 2."""
    return load_document(path, DRAWN)[1]


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
    placement becomes one placement comparison), lessons run one by one, throughput runs. A
    later result replaces an earlier one with the same key (bench: channel, peer, cpu, size;
    lessons: name; throughput: size).
    """
    out: list[Doc] = []
    for doc in docs:
        kind = schema_kind(doc)
        if kind == "trace":  # each trace run is drawn on its own (its timelines, its reading)
            out.append(dict(doc))
            continue
        into = next((d for d in out if schema_kind(d) == kind and same_machine(d, doc)), None)
        if into is None:
            out.append(dict(doc))
            continue
        items, key = _ITEMS[kind]
        merged = {key(x): x for x in into[items]}
        merged.update({key(x): x for x in doc[items]})
        into[items] = list(merged.values())
        into["created"] = max(str(into.get("created", "")), str(doc.get("created", "")))
    return out


def _lesson_key(lesson: Doc) -> str:
    return str(lesson["name"])


def _size_key(row: Doc) -> int:
    return int(row["size"])


# Per family: the list a document's items are in, and what identifies one item across runs.
_ITEMS: dict[str, tuple[str, Callable[[Doc], object]]] = {
    "bench": ("results", lambda r: result_key(r)),
    "lessons": ("lessons", _lesson_key),
    "throughput": ("results", _size_key),
}


def result_key(r: Doc) -> tuple[str, str, str, int]:
    """(channel, peer, cpu, size): what identifies a bench result within a run and across runs."""
    return (str(r["channel"]), str(r["peer"]), str(r.get("cpu", "same")), int(r["size"]))
