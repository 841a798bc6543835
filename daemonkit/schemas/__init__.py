"""The JSON Schemas of every document daemonkit writes, and the one reader that checks them.

Each ``*.schema.json`` file beside this module describes one document family, names its
version in ``schema`` (a ``const``), and is shipped with the package:

========================  ==================================================================
``bench.schema.json``     ``daemonkit bench --json`` (local peers, ``--target daemon``,
                          ``--connect``): ``daemonkit.bench/1``
``throughput.schema.json`` ``daemonkit throughput --json``: ``daemonkit.throughput/1``
``lessons.schema.json``   ``daemonkit lessons --json``: ``daemonkit.lessons/2``
``trace.schema.json``     ``daemonkit trace --json``: ``daemonkit.trace/1``
``compare.schema.json``   ``daemonkit compare --json``: ``daemonkit.compare/1``
``startup.schema.json``   ``daemonkit startup --json``: ``daemonkit.startup/1``
``machine.schema.json``   the ``machine`` object the three share
========================  ==================================================================

Every command that reads a document (``report``, ``compare``, ``bench --compare``) reads it
through :func:`load_document` (or checks a parsed one with :func:`check_document`), so a
document that does not match is refused in one line that names the file and the field, with
exit status 2, before anything is measured or drawn. Validation is the ``jsonschema``
library's (Draft 2020-12); the JSON is parsed strictly first: ``NaN``, ``Infinity`` and
numbers too large for a double are not JSON and are refused too.

*Kernel path*: one ``open``/``read`` of the document and of each schema file (once).
*Lifetime*: the parsed schemas are cached for the life of the process.
*See also*: https://json-schema.org/draft/2020-12, ``docs`` for each field's meaning.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from daemonkit.errors import DocumentError, UsageError

__all__ = ["KINDS", "check_document", "load_document", "parse_json", "schema_of"]

# The document families, by the version string each writes in its "schema" field.
KINDS = {
    "daemonkit.bench/1": "bench",
    "daemonkit.throughput/1": "throughput",
    "daemonkit.lessons/2": "lessons",
    "daemonkit.trace/1": "trace",
    "daemonkit.compare/1": "compare",
    "daemonkit.startup/1": "startup",
}
_SHARED = ("machine",)
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_MESSAGE_MAX = 120  # characters of the validator's message kept in the one-line error


@cache
def schema_of(kind: str) -> dict[str, Any]:
    """The parsed schema file ``<kind>.schema.json``."""
    text = resources.files(__name__).joinpath(f"{kind}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (schema_of(k)["$id"], Resource.from_contents(schema_of(k))) for k in (*_SHARED, kind)
    )
    return Draft202012Validator(schema_of(kind), registry=registry)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in JSON")


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"{text[:20]} is out of range for a number")
    return x


def parse_json(text: str, where: str) -> Any:
    """Parse *text* as strict JSON (no NaN, no Infinity, no overflowing numbers)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as err:
        raise DocumentError(f"{where}: not JSON (line {err.lineno}: {err.msg})") from err
    except (ValueError, RecursionError) as err:  # from the hooks, or a number of 5000 digits
        raise DocumentError(f"{where}: not JSON ({str(err)[:_MESSAGE_MAX]})") from err


def check_document(doc: object, where: str, kinds: tuple[str, ...] | None = None) -> str:
    """Check a parsed document against the schema its ``schema`` field names; return its kind.

    *kinds* limits the families the caller can use (``("bench",)`` for ``compare``). Raises
    :class:`DocumentError` naming *where* and the first field that does not match.
    """
    version = doc.get("schema") if isinstance(doc, dict) else None
    kind = KINDS.get(version) if isinstance(version, str) else None
    accepted = [v for v, k in KINDS.items() if kinds is None or k in kinds]
    if kind is None or version not in accepted:
        what = f"schema {version!r}" if isinstance(doc, dict) else "top level not an object"
        raise DocumentError(
            f"{where}: not a document this command reads ({what}; it reads {', '.join(accepted)})"
        )
    from jsonschema.exceptions import best_match

    errors = list(_validator(kind).iter_errors(doc))
    # A field of the wrong type is named before what the conditional rules derive from it.
    plain = [e for e in errors if not {"if", "then", "else"} & set(e.absolute_schema_path)]
    error = best_match(plain or errors)
    if error is not None:
        raise DocumentError(f"{where}: {_field(error.absolute_path)}: {_message(error)}")
    return kind


def load_document(path: Path, kinds: tuple[str, ...] | None = None) -> tuple[str, dict[str, Any]]:
    """Read, parse and check the document at *path*: ``(kind, document)``."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise UsageError(f"{where}: no such file") from err
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise DocumentError(f"{where}: cannot read: {reason}") from err
    doc = parse_json(text, where)
    kind = check_document(doc, where, kinds)
    return kind, doc


def _field(path: Any) -> str:
    """``results[3].latency_ns.p50`` from the validator's path; ``(top level)`` for none."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(top level)"


def _message(error: Any) -> str:
    """The validator's message on one line, with a long offending value cut short."""
    if "else" in error.absolute_schema_path or "then" in error.absolute_schema_path:
        rule = error.schema.get("description") or _find_description(error)
        return f"{_message_text(error)} ({rule})" if rule else _message_text(error)
    return _message_text(error)


def _find_description(error: Any) -> str:
    """The description of the conditional branch (``then``/``else``) the error came from."""
    for parent in (error.parent, *getattr(error, "context", ())):
        if parent is not None and isinstance(parent.schema, dict):
            return str(parent.schema.get("description", ""))
    return ""


def _message_text(error: Any) -> str:
    if error.validator == "type":
        found = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
        return f"{found} where {_types(error.validator_value)} is expected"
    text = " ".join(str(error.message).split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _types(expected: object) -> str:
    return " or ".join(expected) if isinstance(expected, list) else str(expected)
