"""`daemonkit bench --target daemon`: round trips to the running demo daemon's endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    Daemons,
    daemons_fixture,
    wait_until,
)

from daemonkit.bench.targets.daemon import DAEMON_CHANNELS
from daemonkit.cleanup import list_objects
from daemonkit.cli import main


def test_bench_measures_every_daemon_endpoint(daemons: Daemons, tmp_path: Path) -> None:
    daemons.start()
    pid = daemons.pid()
    before = set(list_objects([daemons.rdir]))  # the daemon's own: listening sockets, FIFOs
    out = tmp_path / "daemon.json"
    code = main(
        ["bench", "--target", "daemon", *daemons.loc(), "--sizes", "0,4K",
         "--iterations", "40", "--warmup", "4", "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["options"]["target"] == "daemon" and doc["machine"]["daemon"]["pid"] == pid
    results = doc["results"]
    assert {r["channel"] for r in results} == set(DAEMON_CHANNELS)
    for r in results:
        assert r["peer"] == "daemon" and r["error"] is None, r
        assert r["iterations"] == 40
        assert sum(r["histogram"]["counts"]) == 40
        lat = r["latency_ns"]
        assert lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
        if r["payload"]:
            assert r["verified"]["sizes"] == 40
    payload_cases = [(r["channel"], r["size"]) for r in results if r["payload"]]
    assert len(payload_cases) == 2 * (len(DAEMON_CHANNELS) - 1)  # both sizes each
    assert [(r["size"], r["payload"]) for r in results if r["channel"] == "signal"] == [(0, False)]
    # every per-client object the daemon made for the run (FIFO pairs, a shm segment and its
    # semaphores) is released once the daemon sees the ends' control connections close (its
    # main loop does that after our close() returned); the daemon still runs
    wait_until(lambda: set(list_objects([daemons.rdir])) == before, what="the release")
    assert main(["status", *daemons.loc()]) == 0


def test_bench_without_a_daemon_is_one_line(
    daemons: Daemons, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "--target", "daemon", *daemons.loc(), "--iterations", "5"])
    assert code == 7  # LSB: not running
    err = capsys.readouterr().err
    assert err.startswith("daemonkit: ") and err.count("\n") == 1 and "not running" in err
