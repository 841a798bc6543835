"""`daemonkit bench` results: the JSON document, its CSV view, statistics, --compare, pinning.

Every run here is real (forked peers, real pipes and semaphores) with tiny iteration counts;
what is checked is that the document is complete and internally consistent, never a timing.
"""

from __future__ import annotations

import csv
import json
import math
import os
from array import array
from pathlib import Path
from typing import Any

import pytest

from daemonkit.bench.references import find_tool
from daemonkit.bench.results import load
from daemonkit.bench.stats import histogram, latency
from daemonkit.channels import REGISTRY, channel_class
from daemonkit.channels._stream import FdStreamEnd
from daemonkit.channels.base import PayloadEnd, Role
from daemonkit.channels.pipe import PipeChannel
from daemonkit.cli import main

RESULT_KEYS = {
    "channel",
    "peer",
    "cpu",
    "size",
    "payload",
    "iterations",
    "latency_ns",
    "roundtrips_per_s",
    "mb_per_s",
    "ctx_switches_per_roundtrip",
    "error",
    "histogram",
}
LATENCY_KEYS = ["min", "p50", "p90", "p99", "p999", "max", "mean", "stdev"]
NUMBER = (int, float)


def _notify_channel() -> str | None:
    """A notification channel that loads here (they are written alongside this runner)."""
    for name in ("eventfd", "sysv-sem", "posix-sem", "th-event"):
        try:
            if not channel_class(name).payload:
                return name
        except ImportError:
            continue
    return None


def _bench(tmp_path: Path, *args: str, name: str = "run") -> tuple[int, dict[str, Any], Path]:
    out_json, out_csv = tmp_path / f"{name}.json", tmp_path / f"{name}.csv"
    code = main(["bench", *args, "--json", str(out_json), "--csv", str(out_csv)])
    return code, json.loads(out_json.read_text()), out_csv


def test_json_document_is_complete_and_consistent(tmp_path: Path) -> None:
    notify = _notify_channel()
    channels = "pipe" + (f",{notify}" if notify else "")
    code, doc, _ = _bench(
        tmp_path, "--channels", channels, "--sizes", "0,64,70K", "--iterations", "60",
        "--warmup", "5",
    )  # fmt: skip
    assert code == 0
    assert doc["schema"] == "daemonkit.bench/1"
    assert isinstance(doc["created"], str) and isinstance(doc["command"], list)
    assert doc["timer_overhead_ns"] > 0
    machine = doc["machine"]
    for key in ("hostname", "kernel", "cpu_model", "cpu_count", "python", "pyzmq", "libzmq"):
        assert key in machine
    assert machine["pinning"]["mode"] == "same"

    results = doc["results"]
    pipes = [r for r in results if r["channel"] == "pipe"]
    assert sorted((r["peer"], r["size"]) for r in pipes) == [
        (p, s) for p in ("process", "thread") for s in (0, 64, 70 * 1024)
    ]
    for r in results:
        assert r.keys() >= RESULT_KEYS
        assert r["error"] is None, r["error"]
        assert r["cpu"] == "same" and r["peer"] in ("process", "thread")
        assert r["iterations"] == 60
        lat = r["latency_ns"]
        assert list(lat) == LATENCY_KEYS
        assert all(isinstance(lat[k], NUMBER) for k in LATENCY_KEYS)
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"]
        assert lat["p999"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"] and lat["stdev"] >= 0
        # round trips per second is the reciprocal of the mean round trip
        assert r["roundtrips_per_s"] == pytest.approx(1e9 / lat["mean"], rel=1e-3)
        hist = r["histogram"]
        assert sum(hist["counts"]) == r["iterations"]
        assert len(hist["edges_ns"]) == len(hist["counts"]) + 1
        assert hist["edges_ns"] == sorted(hist["edges_ns"])
        assert hist["edges_ns"][0] <= lat["min"] and lat["max"] <= hist["edges_ns"][-1]
        cs = r["ctx_switches_per_roundtrip"]
        for kind in ("voluntary", "involuntary"):
            assert cs[kind]["client"] >= 0 and cs[kind]["peer"] >= 0
        # both ends pinned to the same single CPU, as the peer itself reported it
        assert len(r["pinning"]["client"]) == 1
        assert r["pinning"]["client"] == r["pinning"]["peer"]
        if r["payload"]:
            mb = 2 * r["size"] * r["roundtrips_per_s"] / 1e6  # both ways, MB = 10**6 bytes
            assert r["mb_per_s"] == pytest.approx(mb, rel=1e-4, abs=1e-3)
            assert r["verified"]["sizes"] == 60
            assert r["verified"]["checksums"] >= (1 if r["size"] else 0)
        else:
            assert r["mb_per_s"] is None
    if notify:  # a notification channel runs once per peer kind, at size 0, without payload
        notes = [r for r in results if r["channel"] == notify]
        assert [(r["size"], r["payload"]) for r in notes] == [(0, False)] * len(notes)
        assert 1 <= len(notes) <= 2


def test_csv_rows_match_the_json_results(tmp_path: Path) -> None:
    code, doc, csv_path = _bench(
        tmp_path, "--channels", "pipe", "--sizes", "0,4K", "--iterations", "30", "--warmup", "3"
    )
    assert code == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(doc["results"])
    for row, r in zip(rows, doc["results"], strict=True):
        assert (row["channel"], row["peer"], row["cpu"], int(row["size"])) == (
            r["channel"], r["peer"], r["cpu"], r["size"],
        )  # fmt: skip
        assert int(row["iterations"]) == r["iterations"]
        for k in LATENCY_KEYS:
            assert float(row[f"{k}_ns"]) == r["latency_ns"][k]
        assert float(row["roundtrips_per_s"]) == r["roundtrips_per_s"]
        assert float(row["mb_per_s"]) == r["mb_per_s"]
        cs = r["ctx_switches_per_roundtrip"]
        assert float(row["cs_voluntary_peer"]) == cs["voluntary"]["peer"]
        assert float(row["cs_involuntary_client"]) == cs["involuntary"]["client"]
        assert row["error"] == ""


class SmallPipe(PipeChannel):
    """A real pipe channel that declares a 100-byte limit, to exercise size skipping."""

    name = "small-pipe"

    @classmethod
    def max_message_size(cls) -> int | None:
        return 100


class _FramedEnd(FdStreamEnd):
    """A stream end that always sends frames (no unframed loop), as where sizes vary."""

    def stream_fds(self) -> None:
        return None


class _FlipEnd(_FramedEnd):
    """A server end that damages what it echoes: one bit of the last byte."""

    def send(self, data: memoryview) -> None:
        if len(data):
            data[-1] ^= 1
        super().send(data)


class CorruptPipe(PipeChannel):
    """A real pipe channel, framed, whose peer's end (*server_end*) corrupts every echo."""

    name = "corrupt-pipe"
    server_end: type[FdStreamEnd] = _FlipEnd

    def open(self, role: Role) -> PayloadEnd:
        end = super().open(role)
        assert isinstance(end, FdStreamEnd)
        kind = self.server_end if role == "server" else _FramedEnd
        return kind(self.name, end._rfd, end._wfd)


def test_a_channel_that_corrupts_echoes_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "corrupt-pipe", f"{__name__}:CorruptPipe")
    code, doc, _ = _bench(
        tmp_path, "--channels", "corrupt-pipe,pipe", "--peer", "process", "--sizes", "0,64",
        "--iterations", "20", "--warmup", "2",
    )  # fmt: skip
    assert code == 1
    by_case = {(r["channel"], r["size"]): r for r in doc["results"]}
    bad = by_case[("corrupt-pipe", 64)]
    assert bad["latency_ns"] is None and "CRC-32" in bad["error"]
    # a 0-byte message has no content to damage; the honest channel is unaffected
    assert by_case[("corrupt-pipe", 0)]["error"] is None
    assert by_case[("pipe", 64)]["error"] is None and by_case[("pipe", 0)]["error"] is None


class _FlipOnReceiveEnd(_FramedEnd):
    """A receiving end that damages what arrived: one bit of the message's last byte."""

    def recv_into(self, buf: memoryview) -> int:
        n = super().recv_into(buf)
        if n:
            buf[n - 1] ^= 1
        return n


class CorruptStreamPipe(CorruptPipe):
    """A real pipe channel whose peer's end damages every message it receives."""

    name = "corrupt-stream"
    server_end = _FlipOnReceiveEnd


def test_a_stream_whose_content_arrives_damaged_is_that_cases_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stream mode checks content per batch (CRC-32 of the last message received against the
    one sent): a damaged stream is its case's error, the honest pipe beside it is measured and
    says how many batches it checked."""
    monkeypatch.setitem(REGISTRY, "corrupt-stream", f"{__name__}:CorruptStreamPipe")
    code, doc, _ = _bench(
        tmp_path, "--mode", "stream", "--channels", "corrupt-stream,pipe", "--peer", "process",
        "--sizes", "64", "--iterations", "50", "--warmup", "5",
    )  # fmt: skip
    assert code == 1
    by_channel = {r["channel"]: r for r in doc["results"]}
    bad = by_channel["corrupt-stream"]
    assert bad["messages_per_s"] is None and "CRC-32" in bad["error"]
    good = by_channel["pipe"]
    assert good["error"] is None and good["messages_per_s"] > 0
    assert good["framed"] is False  # the unframed path: the peer's check covers it too
    assert good["verified"]["checksums"] >= 2  # the warm-up batch and at least one timed


def test_sizes_above_a_channel_limit_are_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "small-pipe", f"{__name__}:SmallPipe")
    code, doc, _ = _bench(
        tmp_path, "--channels", "small-pipe", "--peer", "thread", "--sizes", "64,4K",
        "--iterations", "20", "--warmup", "2",
    )  # fmt: skip
    assert code == 0
    by_size = {r["size"]: r for r in doc["results"]}
    assert by_size[64]["latency_ns"] is not None and by_size[64]["skipped"] is None
    assert by_size[4096]["latency_ns"] is None and by_size[4096]["error"] is None
    assert "limit" in by_size[4096]["skipped"] and "100" in by_size[4096]["skipped"]


def test_compare_shows_ratios_and_refuses_another_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--channels", "pipe", "--peer", "thread", "--iterations", "30", "--warmup", "3"]
    code, old, _ = _bench(tmp_path, *args, name="old")
    assert code == 0
    capsys.readouterr()
    assert main(["bench", *args, "--compare", str(tmp_path / "old.json")]) == 0
    out = capsys.readouterr().out
    assert "this run against" in out and "new/old" in out
    assert "faster" in out or "slower" in out or "not significant" in out

    old["machine"]["hostname"] = "another-host"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(old))
    assert main(["bench", *args, "--compare", str(other)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another machine" in err and "--force" in err

    assert main(["bench", *args, "--compare", str(other), "--force"]) == 0
    assert "differs: hostname" in capsys.readouterr().out


def test_compare_rejects_a_file_that_is_not_a_bench_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something/2"}')
    # An input document that does not match its schema: exit 2, like a usage error.
    assert main(["bench", "--channels", "pipe", "--compare", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("daemonkit: ") and err.count("\n") == 1 and "schema" in err


def test_split_pins_two_cpus_and_falls_back_on_one(tmp_path: Path) -> None:
    original = os.sched_getaffinity(0)
    args = ["--channels", "pipe", "--peer", "process", "--cpu", "split", "--iterations", "20"]
    if len(original) >= 2:
        code, doc, _ = _bench(tmp_path, *args, name="two")
        assert code == 0
        pin = doc["results"][0]["pinning"]
        assert len(pin["client"]) == len(pin["peer"]) == 1 and pin["client"] != pin["peer"]
        assert doc["machine"]["pinning"]["note"] is None
    one = min(original)
    os.sched_setaffinity(0, {one})  # as `taskset -c N` would: a single CPU allowed
    try:
        code, doc, _ = _bench(tmp_path, *args, name="one")
    finally:
        os.sched_setaffinity(0, original)
    assert code == 0
    assert doc["results"][0]["pinning"] == {"client": [one], "peer": [one]}
    assert "fell back" in doc["machine"]["pinning"]["note"]


def test_statistics_of_known_samples() -> None:
    samples = array("q", range(1, 1001))
    lat = latency(samples)
    assert (lat.min, lat.p50, lat.max) == (1, 500.5, 1000)
    assert lat.p90 == pytest.approx(900.1) and lat.p999 == pytest.approx(999.001, abs=0.1)
    assert lat.mean == 500.5 and lat.stdev == pytest.approx(288.8, abs=0.1)
    hist = histogram(samples)
    assert sum(hist.counts) == 1000
    ratios = [b / a for a, b in zip(hist.edges_ns[1:], hist.edges_ns[2:], strict=False)]
    assert all(math.isclose(q, 10 ** (1 / 20), rel_tol=1e-3) for q in ratios)  # log-spaced
    one = histogram(array("q", [0, 7]))  # a zero sample still lands in a bin
    assert sum(one.counts) == 2
    assert latency(array("q", [5])).stdev == 0.0


def test_references_are_measured_or_skipped_with_their_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--reference: the bare Python loops have a p50 each; a C tool has a mean when it is
    installed, else it is skipped naming the package; the rows are printed and the
    document holds them, checked by its schema on the way back in."""
    code, doc, _ = _bench(
        tmp_path, "--channels", "pipe,shm-spin", "--peer", "process", "--cpu", "same",
        "--sizes", "0,64", "--iterations", "300", "--warmup", "10", "--reference",
    )  # fmt: skip
    assert code == 0
    refs = {(r["name"], r["size"]): r for r in doc["references"]}
    for name in ("python pipe loop", "python busy-poll loop"):
        for size in (0, 64):
            assert refs[(name, size)]["p50_ns"] > 0 and refs[(name, size)]["skipped"] is None
    for tool, package in (("perf", "linux-perf"), ("lat_pipe", "lmbench"), ("lat_tcp", "lmbench")):
        (ref,) = [r for r in doc["references"] if r["name"] == tool]
        if find_tool(tool):  # on PATH, or in /usr/lib/lmbench/bin (Debian's lmbench)
            assert ref["mean_ns"] > 0 or "no figure" in ref["skipped"]
        else:
            assert ref["mean_ns"] is None and package in ref["skipped"]
    out = capsys.readouterr().out
    assert "references (" in out and "python busy-poll loop" in out and "target <= 1.5x" in out
    run = load(tmp_path / "run.json")
    assert len(run.references) == len(doc["references"])


def test_stream_mode_measures_one_way_rates(tmp_path: Path) -> None:
    """--mode stream: messages/s and MB/s one way (size x rate), CPU per message of both
    ends; a shared-memory channel and REQ/REP (turns) still stream; a notification has nothing to
    stream and is skipped with the reason; the document reads back through its schema."""
    notify = _notify_channel()
    channels = "pipe,unix-stream,posix-shm,zmq-ipc" + (f",{notify}" if notify else "")
    code, doc, _ = _bench(
        tmp_path, "--mode", "stream", "--channels", channels, "--peer", "process",
        "--sizes", "64,64K", "--iterations", "200", "--warmup", "10",
    )  # fmt: skip
    assert code == 0
    assert doc["options"]["mode"] == "stream"
    measured = [r for r in doc["results"] if r["messages_per_s"]]
    assert {(r["channel"], r["size"]) for r in measured} == {
        (c, s) for c in ("pipe", "unix-stream", "posix-shm", "zmq-ipc") for s in (64, 65536)
    }
    for r in measured:
        assert r["mode"] == "stream" and r["latency_ns"] is None and r["iterations"] == 200
        assert math.isclose(r["mb_per_s"], r["size"] * r["messages_per_s"] / 1e6, rel_tol=1e-3)
        cpu = r["cpu_us_per_message"]
        assert cpu["client"]["user"] + cpu["client"]["system"] > 0
        assert cpu["peer"]["user"] + cpu["peer"]["system"] > 0
        assert r["framed"] is (None if r["channel"] in ("posix-shm", "zmq-ipc") else False)
    if notify:
        (skipped,) = [r for r in doc["results"] if r["channel"] == notify]
        assert "nothing to stream" in skipped["skipped"]
    assert len(load(tmp_path / "run.json").results) == len(doc["results"])
