"""Benchmark results as data: one versioned JSON document per run, and a CSV view of it.

The document (schema ``daemonkit.bench/1``)::

    {"schema": "daemonkit.bench/1", "created": ISO-8601 UTC, "command": [argv...],
     "options": {...}, "machine": {... "pinning": {...}}, "timer_overhead_ns": float,
     "references": [{"name", "what", "channel", "size", "p50_ns", "mean_ns", "command",
                     "skipped"}, ...],
     "results": [{"channel", "peer", "cpu", "size", "payload", "iterations",
                  "latency_ns": {"min","p50","p90","p99","p999","max","mean","stdev"},
                  "roundtrips_per_s", "mb_per_s",
                  "ctx_switches_per_roundtrip": {"voluntary": {"client","peer"},
                                                 "involuntary": {"client","peer"}},
                  "error", "skipped", "histogram": {"edges_ns", "counts"},
                  "pinning": {"client", "peer"}, "verified": {"sizes", "checksums"},
                  "cpu_us_per_roundtrip": {"client": {"user","system"},
                                           "peer": {"user","system"} | null},
                  "ran_on": {"client": [cpu...], "peer": [cpu...]},
                  "batch_p50_ns": [...], "framed": bool | null,
                  "latency_hdr": "HISTF..."}, ...]}

A result that failed has ``error`` set, one that could not run (a size the channel cannot
carry) has ``skipped`` set; both have null measurements. ``mb_per_s`` counts payload bytes
both ways (2 x size x round trips per second, MB = 10**6 bytes) and is null for notification
channels. ``cpu_us_per_roundtrip`` is the CPU time (user and system, from getrusage(2) or
``/proc/PID/stat``) each end used per round trip: the client's whole process (less a thread
peer's own), the peer's process or thread; ``peer`` is null when the other end cannot tell
(a remote server). ``wall_us_per_roundtrip`` is the wall time of the timed loops per round
trip (the loop's own overhead included): CPU time over it is the share of a CPU an end kept.
``ran_on`` lists the CPUs each end was found on after its batches
(sched_getcpu(3), ``/proc/PID/stat`` field 39), read back rather than assumed; ``batch_p50_ns``
the median of each timed batch, whose spread says how steady the run was.

In stream mode (``"mode": "stream"``, :mod:`daemonkit.bench.stream`) a result has no
latencies: ``messages_per_s`` one way, ``mb_per_s`` one way (size x messages per second),
``batch_messages_per_s`` and ``cpu_us_per_message`` instead. ``framed`` says
whether a byte stream carried a length header with each message (true), or, both sides
knowing the size, exactly the message's bytes (false, a 0-byte message as a 1-byte token);
null for channels that keep message boundaries themselves. ``latency_hdr`` keeps every
round trip as an HdrHistogram (see :mod:`daemonkit.bench.distribution`): comparisons draw
their significance from it. Tables, CSV and comparisons are views computed from this
document, never from the timed loop.

*Kernel path*: one ``write`` (or ``read``) of the file.
*Lifetime*: the files are the user's; nothing is removed.
*See also*: pyperf's JSON format, which this follows in spirit.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from daemonkit.bench.stats import Histogram, Latency
from daemonkit.errors import DaemonkitError
from daemonkit.schemas import load_document

__all__ = [
    "CSV_COLUMNS",
    "SCHEMA",
    "BenchFileError",
    "CpuCost",
    "CpuPerRoundtrip",
    "CtxPerRoundtrip",
    "EndPair",
    "Result",
    "Run",
    "from_json",
    "load",
    "to_csv",
]

SCHEMA = "daemonkit.bench/1"
_T = TypeVar("_T")


class BenchFileError(DaemonkitError):
    """A results file that cannot be written."""


@dataclass(frozen=True)
class EndPair:
    """One figure for each end of the channel."""

    client: float
    peer: float


@dataclass(frozen=True)
class CtxPerRoundtrip:
    """Context switches per round trip, as counted by the kernel for each end's thread."""

    voluntary: EndPair  # the thread blocked (waiting for the other end) and gave up the CPU
    involuntary: EndPair  # the thread was preempted


@dataclass(frozen=True)
class CpuCost:
    """CPU time of one end per round trip, in µs."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system


@dataclass(frozen=True)
class CpuPerRoundtrip:
    """CPU time per round trip of each end; the peer's is None when it cannot be known."""

    client: CpuCost
    peer: CpuCost | None


@dataclass(frozen=True)
class Result:
    """One (channel, peer, cpu, size) measurement, or why there is none."""

    channel: str
    peer: str
    cpu: str
    size: int
    payload: bool | None  # None only when the channel's module could not be loaded
    iterations: int = 0
    latency_ns: Latency | None = None
    roundtrips_per_s: float | None = None
    mb_per_s: float | None = None
    ctx_switches_per_roundtrip: CtxPerRoundtrip | None = None
    error: str | None = None
    skipped: str | None = None
    histogram: Histogram | None = None
    pinning: dict[str, list[int]] | None = None  # CPUs each end was allowed, as obtained
    verified: dict[str, int] | None = None  # echoes whose size / content checksum was checked
    cpu_us_per_roundtrip: CpuPerRoundtrip | None = None
    wall_us_per_roundtrip: float | None = None  # the timed loops' wall time, loop included
    ran_on: dict[str, list[int]] | None = None  # CPUs each end was seen on, read back
    batch_p50_ns: list[float] | None = None  # the median of each timed batch
    framed: bool | None = None  # a byte stream's length header travelled (None: not a stream)
    mode: str = "pingpong"  # or "stream": one-way messages (daemonkit.bench.stream)
    messages_per_s: float | None = None  # stream mode
    batch_messages_per_s: list[float] | None = None  # stream mode: each batch's rate
    cpu_us_per_message: CpuPerRoundtrip | None = None  # stream mode: CPU time per message
    latency_hdr: str | None = None  # every round trip, as an HdrHistogram (bench.distribution)

    @property
    def measured(self) -> bool:
        """Figures of either mode: round-trip latencies, or a stream's rate."""
        return self.latency_ns is not None or self.messages_per_s is not None

    @property
    def ok(self) -> bool:
        return self.latency_ns is not None

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.channel, self.peer, self.cpu, self.size)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Result:
        lat, cs, hist = d.get("latency_ns"), d.get("ctx_switches_per_roundtrip"), d.get("histogram")
        return Result(
            channel=d["channel"],
            peer=d["peer"],
            cpu=d["cpu"],
            size=d["size"],
            payload=d["payload"],
            iterations=d["iterations"],
            latency_ns=_known(Latency, lat) if lat else None,
            roundtrips_per_s=d["roundtrips_per_s"],
            mb_per_s=d["mb_per_s"],
            ctx_switches_per_roundtrip=(
                CtxPerRoundtrip(
                    _known(EndPair, cs["voluntary"]), _known(EndPair, cs["involuntary"])
                )
                if cs
                else None
            ),
            error=d["error"],
            skipped=d.get("skipped"),
            histogram=_known(Histogram, hist) if hist else None,
            pinning=d.get("pinning"),
            verified=d.get("verified"),
            cpu_us_per_roundtrip=_cpu_from_json(d.get("cpu_us_per_roundtrip")),
            wall_us_per_roundtrip=d.get("wall_us_per_roundtrip"),
            ran_on=d.get("ran_on"),
            batch_p50_ns=d.get("batch_p50_ns"),
            framed=d.get("framed"),
            mode=d.get("mode") or "pingpong",
            messages_per_s=d.get("messages_per_s"),
            batch_messages_per_s=d.get("batch_messages_per_s"),
            cpu_us_per_message=_cpu_from_json(d.get("cpu_us_per_message")),
            latency_hdr=d.get("latency_hdr"),
        )


def _cpu_from_json(d: dict[str, Any] | None) -> CpuPerRoundtrip | None:
    if not d:
        return None
    peer = d.get("peer")
    return CpuPerRoundtrip(_known(CpuCost, d["client"]), _known(CpuCost, peer) if peer else None)


def _known(cls: type[_T], d: dict[str, Any]) -> _T:
    """*cls* built from the fields it has; keys a newer version added are left aside."""
    return cls(**{f.name: d[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass
class Run:
    """A whole run: what was asked, where it ran, and every result."""

    created: str
    command: list[str]
    options: dict[str, Any]
    machine: dict[str, Any]
    timer_overhead_ns: float
    results: list[Result] = field(default_factory=list)
    # C tools and bare Python loops measured in the same run (daemonkit.bench.references)
    references: list[dict[str, Any]] = field(default_factory=list)
    schema: str = SCHEMA

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        return {"schema": doc.pop("schema"), **doc}  # the version first, for a human reader

    def write_json(self, path: Path) -> None:
        _write(path, json.dumps(self.to_json(), indent=1) + "\n")

    def write_csv(self, path: Path) -> None:
        _write(path, to_csv(self.results))


def check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written before measuring, not after.

    The kernel is asked, not os.access(): root passes every permission check and still
    cannot create files in /proc. An existing file is opened for appending (not truncated);
    a new one is created and removed again at once.
    """
    try:
        if path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
            os.unlink(path)
    except OSError as exc:
        raise BenchFileError(f"cannot write {path}: {exc.strerror}") from exc


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # e.g. a directory that root may "write" but the kernel refuses
        raise BenchFileError(f"cannot write {path}: {exc.strerror}") from exc


def load(path: Path) -> Run:
    """Read a results file, checked against its schema (:mod:`daemonkit.schemas`); a
    missing, foreign or malformed file is a one-line error with exit status 2."""
    return from_json(load_document(path, ("bench",))[1])


def from_json(doc: dict[str, Any]) -> Run:
    """The :class:`Run` of a parsed document that matches the bench schema."""
    return Run(
        created=doc["created"],
        command=doc["command"],
        options=doc["options"],
        machine=doc["machine"],
        timer_overhead_ns=doc["timer_overhead_ns"],
        results=[Result.from_json(r) for r in doc["results"]],
        references=doc.get("references", []),
    )


# -- CSV: one flat row per result ------------------------------------------------------------

CSV_COLUMNS = (
    "channel",
    "peer",
    "cpu",
    "size",
    "payload",
    "iterations",
    "min_ns",
    "p50_ns",
    "p90_ns",
    "p99_ns",
    "p999_ns",
    "max_ns",
    "mean_ns",
    "stdev_ns",
    "roundtrips_per_s",
    "mb_per_s",
    "cs_voluntary_client",
    "cs_voluntary_peer",
    "cs_involuntary_client",
    "cs_involuntary_peer",
    "cpu_us_client",
    "cpu_us_peer",
    "error",
    "skipped",
)


def _csv_row(r: Result) -> list[object]:
    lat = r.latency_ns
    stats: list[object] = (
        [lat.min, lat.p50, lat.p90, lat.p99, lat.p999, lat.max, lat.mean, lat.stdev]
        if lat
        else [""] * 8
    )
    cs = r.ctx_switches_per_roundtrip
    switches: list[object] = (
        [cs.voluntary.client, cs.voluntary.peer, cs.involuntary.client, cs.involuntary.peer]
        if cs
        else [""] * 4
    )
    return [
        r.channel,
        r.peer,
        r.cpu,
        r.size,
        "" if r.payload is None else str(r.payload).lower(),
        r.iterations,
        *stats,
        "" if r.roundtrips_per_s is None else r.roundtrips_per_s,
        "" if r.mb_per_s is None else r.mb_per_s,
        *switches,
        *_cpu_cells(r),
        r.error or "",
        r.skipped or "",
    ]


def _cpu_cells(r: Result) -> list[object]:
    cpu = r.cpu_us_per_roundtrip
    if cpu is None:
        return ["", ""]
    return [round(cpu.client.total, 4), "" if cpu.peer is None else round(cpu.peer.total, 4)]


def to_csv(results: list[Result]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in results:
        w.writerow(_csv_row(r))
    return out.getvalue()
