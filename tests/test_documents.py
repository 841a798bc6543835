"""Every document daemonkit writes matches its published schema, and every reader refuses a
broken one in one line with exit status 2, before anything is measured or drawn.

The documents are real: one short run of each producer (bench with local peers, bench against
the running demo daemon, bench and throughput against a ``daemonkit serve`` on loopback, two
lessons). Each field of each is then mutated (wrong type, missing, out of range, NaN, huge)
and fed to the commands that read documents.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from facilities import require
from real_documents import write_documents, write_trace

from daemonkit.cli import main
from daemonkit.errors import DocumentError
from daemonkit.schemas import KINDS, check_document, parse_json, schema_of

Doc = dict[str, Any]
# Free-form objects: their content is the producer's own (a lesson's measurements, the figures
# a verdict was computed from, options a newer version may add) and is not constrained.
FREE = frozenset({"measurements", "figures"})
# A traced case's figures: their shape is daemonkit.trace.analysis's; only the case's identity
# and outcome are constrained by the schema.
TRACE_FREE = FREE | {
    "pinning", "tids", "latency_ns", "events", "lost_events", "switches_per_round_trip",
    "wakeups", "run_slices", "cpu_time", "futex_sleeps_per_round_trip", "timeline",
    "size", "round_trips",  # a case that could not be traced has neither
    "value",  # a finding's value may be negative
}  # fmt: skip
# Keys the schemas let a document leave out (older producers did not write them).
OPTIONAL = {
    "skipped",
    "cpu_us_per_roundtrip",  # bench fields newer than the first documents
    "ran_on",
    "wall_us_per_roundtrip",
    "batch_p50_ns",
    "framed",
    "mode",
    "messages_per_s",
    "batch_messages_per_s",
    "cpu_us_per_message",
    "references",
    "reference",
    "command",
    "p50_ns",
    "mean_ns",
    "isolated",
    "nohz_full",
    "virtualization",
    "histogram",
    "latency_hdr",
    "pinning",
    "verified",
    "options",
    "arch",
    "cpus_allowed",
    "python_build",
    "pyzmq",
    "libzmq",
    "load_avg",
    "daemon",
    "remote_peer",
    "requested_client",
    "client",
    "client_cpu",
    "peer_cpu",
    "requested_peer",
    "note",
    "channels",
    "peer",
    "target",
    "connect",
    "cpu",
    "sizes",
    "iterations",
    "duration",
    "warmup",
    "quick",
    "pid",
    "version",
    "backend",
    "checksums",
    "messages",
    "bytes",
    "facts",  # the machine facts lessons explain with: documents before them lack it
}


@pytest.fixture(scope="module")
def documents() -> Iterator[dict[str, Doc]]:
    """One real document of each kind the tool writes."""
    base = Path(tempfile.mkdtemp(prefix="dkdoc.", dir="/tmp"))  # short: AF_UNIX paths
    try:
        write_documents(base)
        yield {p.stem: json.loads(p.read_text()) for p in base.glob("*.json")}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_every_document_the_tool_writes_matches_its_published_schema(
    documents: dict[str, Doc],
) -> None:
    assert sorted(documents) == ["bench", "connect", "daemon", "lessons", "throughput"]
    kinds = {name: check_document(doc, name) for name, doc in documents.items()}
    assert kinds == {
        "bench": "bench",
        "daemon": "bench",
        "connect": "bench",
        "throughput": "throughput",
        "lessons": "lessons",
    }
    assert {r["peer"] for r in documents["daemon"]["results"]} == {"daemon"}
    assert {r["peer"] for r in documents["connect"]["results"]} == {"remote"}
    for kind in set(KINDS.values()):  # each schema names the version its producer writes
        assert schema_of(kind)["properties"]["schema"]["const"] in KINDS


# -- mutations ----------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _paths(value: Any, path: Path_ = (), free: frozenset[str] = FREE) -> Iterator[Path_]:
    """Every field below *value*, not inside *free* ones; of a long list only the first and
    the last element."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            if k not in free:
                yield from _paths(v, (*path, k), free)
    elif isinstance(value, list):
        for i in sorted({0, len(value) - 1}) if value else ():
            yield (*path, i)
            yield from _paths(value[i], (*path, i), free)


def _wrong_type(v: Any) -> Any:
    if isinstance(v, bool | int | float):
        return "12"
    if isinstance(v, str):
        return 12
    return [1] if v is None else "x"


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _huge(v: Any) -> Any:
    if _number(v):
        return 10**30
    return "x" * 200_000 if isinstance(v, str) else v


MUTATIONS = {
    "wrong type": _wrong_type,
    "missing": None,
    "out of range": lambda v: -1 if _number(v) else v,
    "NaN": lambda v: float("nan"),
    "huge": _huge,
}


def _mutated(doc: Doc, path: Path_, how: str) -> Doc | None:
    """*doc* with the field at *path* mutated *how*, or None where the mutation changes
    nothing (a string cannot be out of range)."""
    out = copy.deepcopy(doc)
    holder: Any = out
    for part in path[:-1]:
        holder = holder[part]
    last = path[-1]
    if how == "missing":
        if not isinstance(holder, dict):
            return None
        del holder[last]
        return out
    new = MUTATIONS[how](holder[last])  # type: ignore[misc]
    if new is holder[last] and how != "NaN":
        return None
    holder[last] = new
    return out


def _must_break(path: Path_, how: str, value: Any, free: frozenset[str] = FREE) -> bool:
    """Whether the schema must refuse this mutation: everything but leaving out an optional
    key, numbers out of range where negative numbers mean something, and the producer's own
    parts (*free*)."""
    if any(str(p) in free for p in path):
        return False
    if how == "missing":
        return isinstance(path[-1], str) and path[-1] not in OPTIONAL
    return not (how == "out of range" and isinstance(value, bool))


def _command(kind: str, path: Path, out: Path, draw: bool = False) -> list[str]:
    """The reader of a document: ``compare`` for a bench run (it reads every stored round
    trip), the report for the others and wherever the document is drawn."""
    if kind == "bench" and not draw:
        return ["compare", str(path), str(path), "--json", str(out.with_suffix(".json"))]
    return ["report", str(path), "--out", str(out)]


@pytest.mark.parametrize("name", ["bench", "daemon", "connect", "throughput", "lessons"])
def test_every_broken_field_is_one_line_with_exit_2_before_anything_runs(
    documents: dict[str, Doc],
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _mutate_every_field(documents[name], name, tmp_path, capsys)


@pytest.fixture(scope="module")
def trace_document(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    """A real ``daemonkit trace`` document (it needs perf and the scheduler's tracepoints)."""
    from daemonkit.trace import perf

    why = perf.missing()
    if why is not None:
        require("trace", f"cannot record the scheduler's events: {why}")
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    write_trace(path)
    doc: Doc = json.loads(path.read_text())
    return doc


def test_every_broken_field_of_a_trace_document_is_one_line_with_exit_2(
    trace_document: Doc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_document(trace_document, "trace") == "trace"
    _mutate_every_field(trace_document, "trace", tmp_path, capsys, TRACE_FREE)


def _mutate_every_field(
    doc: Doc,
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    free: frozenset[str] = FREE,
) -> None:
    """Mutate every field of *doc* (not inside *free* ones) and read the result: what the
    schema refuses is one line and exit 2; what it lets through is read without a traceback
    (a producer-shaped part the report cannot draw is one line and exit 2 as well)."""
    kind = check_document(doc, name)
    target, out = tmp_path / f"{name}.json", tmp_path / "out"
    refused = 0
    read_accepted: set[str | int] = set()
    wrongly_accepted: list[str] = []
    for path in _paths(doc, free=free):
        holder: Any = doc
        for part in path:
            holder = holder[part]
        for how in MUTATIONS:
            bad = _mutated(doc, path, how)
            if bad is None:
                continue
            target.write_text(json.dumps(bad))
            where = ".".join(map(str, path))
            try:
                check_document(parse_json(target.read_text(), str(target)), str(target))
            except DocumentError:
                pass
            else:
                if _must_break(path, how, holder, free):
                    wrongly_accepted.append(f"{where} {how}")
                # A document the schema allows is read whole: compared (fast) every time,
                # drawn once per part of the document (drawing takes a second or two).
                draws = [False] if kind == "bench" else []
                if path[0] not in read_accepted:
                    read_accepted.add(path[0])
                    draws.append(True)
                for draw in draws:
                    code = main(_command(kind, target, out, draw))
                    err = capsys.readouterr().err
                    assert "Traceback" not in err, (where, how, err)
                    shaped = any(str(p) in free for p in path)  # the producer's own shape
                    assert code in (0, 1) or (shaped and code == 2 and err.count("\n") == 1), (
                        where,
                        how,
                        err,
                    )
                continue
            code = main(_command(kind, target, out))
            err = capsys.readouterr().err
            assert code == 2, f"{where} {how}: exit {code}: {err}"
            assert err.count("\n") == 1 and err.startswith("daemonkit: "), (where, how, err)
            assert str(target) in err and "Traceback" not in err, (where, how, err)
            refused += 1
    assert not wrongly_accepted
    assert refused > 50


def test_the_report_draws_every_document_kind_alone_and_all_together(
    documents: dict[str, Doc], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {}
    for name, doc in documents.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    for name, path in paths.items():
        out = tmp_path / f"alone-{name}"
        assert main(["report", str(path), "--out", str(out)]) == 0, capsys.readouterr().err
        drawn = list((out / "plots").glob("*.png"))
        assert drawn or name == "lessons", name  # these two lessons have no picture
    out = tmp_path / "all"
    # The lessons first on the command line: the page still leads with the round trips.
    order = ["lessons", "throughput", "daemon", "connect", "bench"]
    assert main(["report", *(str(paths[n]) for n in order), "--out", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    first = page.index("<img ")
    assert "latency-summary.png" in page[first : page.index(">", first)]
    start = re.search(r"<section class='plot' id='[^']*latency-summary'>", page)
    assert start is not None
    summary = page[start.start() : page.index("</section>", start.start())]
    for peer in ("thread", "process", "daemon", "remote"):  # every peer's cases are drawn
        assert f"<td>{peer}</td>" in summary
    assert "throughput.png" in page and "Streaming throughput" in page
