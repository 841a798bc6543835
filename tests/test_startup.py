"""Start-up latency: what ``daemonkit start`` reports and what ``daemonkit startup`` collects.

Timing is not judged here (benchmarks do that); the tests check that each stage is reported,
comes from this start, and that the stages come in daemon(7)'s order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from daemon_support import BACKENDS, Daemons, daemons_fixture, dk  # noqa: F401

from daemonkit.errors import DocumentError
from daemonkit.schemas import check_document

STAGES = ["fork_to_pid_s", "fork_to_pidfile_s", "fork_to_ready_s"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_reports_fork_to_ready(daemons: Daemons, backend: str) -> None:
    res = daemons.start("--backend", backend)
    pid = daemons.pid()
    assert re.fullmatch(
        rf"daemonkit: started \(pid {pid}\); ready [0-9.]+ (µs|ms|s) after fork\n", res.stdout
    ), res.stdout
    assert dk("stop", *daemons.loc()).returncode == 0
    res = daemons.start("--backend", backend, "--json")
    doc = json.loads(res.stdout)
    assert doc["pid"] == daemons.pid() != pid
    stages = [doc[k] for k in STAGES]
    assert 0 < stages[0] <= stages[1] <= stages[2], doc  # exists, then pidfile, then ready
    assert dk("stop", *daemons.loc()).returncode == 0


def test_startup_cycles_write_ordered_samples(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    res = dk("startup", "--backend", "native", "--cycles", "2", "--json", out)
    assert res.returncode == 0, res.stderr
    assert "first accept" in res.stdout and "native" in res.stdout
    doc = json.loads(out.read_text())
    assert check_document(doc, str(out)) == "startup"  # its published schema
    assert doc["machine"]["hostname"] and list(doc["runs"]) == ["native"]
    samples = doc["runs"]["native"]["samples"]
    assert len(samples) == 2
    for s in samples:
        assert 0 < s["fork_to_pid_s"] <= s["fork_to_pidfile_s"] <= s["fork_to_ready_s"]
        assert s["fork_to_ready_s"] < s["fork_to_accept_s"]  # a client came only after ready
    summary = doc["runs"]["native"]["summary"]["fork_to_ready_s"]
    assert summary["min"] <= summary["median"] <= summary["max"]
    # The schema refuses what the producer never writes: a stage missing, a string for a time.
    bad = json.loads(out.read_text())
    bad["runs"]["native"]["samples"][0]["fork_to_ready_s"] = "0.1"
    with pytest.raises(DocumentError, match=r"samples\[0\]\.fork_to_ready_s: string where"):
        check_document(bad, "startup.json")
    del bad["runs"]["native"]["samples"][0]["fork_to_accept_s"]
    del bad["runs"]["native"]["samples"][0]["fork_to_ready_s"]
    with pytest.raises(DocumentError, match="required"):
        check_document(bad, "startup.json")
    # Nothing draws a start-up document: the report refuses it in one line.
    res = dk("report", out, "--out", tmp_path / "r")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "daemonkit.startup/1" in res.stderr


def test_startup_rejects_zero_cycles() -> None:
    res = dk("startup", "--cycles", "0")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
