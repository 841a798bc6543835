"""``daemonkit trace --cpu split --report DIR``: the timelines drawn, the page rendered by
headless Chromium, and ``daemonkit report`` reading the trace JSON too.

A real traced run (ends on two CPUs) is the input: each wake-up of one end by the other
crosses CPUs, and the report's timeline shows each end in its own CPU's lane. The browser
helpers are those of :mod:`test_report_browser`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from facilities import need, require
from test_report_browser import CSP, PROBE, chromium
from test_trace import ran_in

from daemonkit.trace import perf

Image = pytest.importorskip("PIL.Image", reason="Pillow comes with the plot extra")
WHY = perf.missing()


@pytest.fixture(scope="module")
def split_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    if WHY is not None:
        require("trace", f"cannot record the scheduler's events: {WHY}")
    need("two-cpus")  # split placement
    d = tmp_path_factory.mktemp("trace-split")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemonkit",
            "trace",
            "--channels",
            "pipe",
            "--peer",
            "both",
            "--cpu",
            "split",
            "--round-trips",
            "300",
            "--json",
            str(d / "x.json"),
            "--report",
            str(d / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    assert f"report: {d / 'r' / 'report.html'}" in r.stdout
    return json.loads((d / "x.json").read_text()), d / "r" / "report.html"


def test_split_wakeups_cross_cpus(split_run: Any) -> None:
    doc, _ = split_run
    for case in doc["cases"]:
        (client_cpu,), (peer_cpu,) = case["pinning"]["client"], case["pinning"]["peer"]
        assert client_cpu != peer_cpu
        for direction in ("to_peer", "to_client"):
            assert case["wakeups"][direction]["other_cpu"] == 1.0
        tl = case["timeline"]
        lanes = tl["lanes"]
        assert {s[2] for s in lanes[str(client_cpu)]} >= {"client"}
        assert "client" not in {s[2] for s in lanes[str(peer_cpu)]}
        # The window is round trips the client timed: in each, the peer ran on its own CPU
        # (it echoed) and the client on its own, however long others held them.
        for start, rt in zip(tl["starts_ns"], tl["round_trip_ns"], strict=True):
            assert ran_in(lanes[str(peer_cpu)], "peer", start, start + rt), (start, lanes)
            assert ran_in(lanes[str(client_cpu)], "client", start, start + rt), (start, lanes)
    assert any(f["condition"] == "idle_wake" for f in doc["findings"])


def test_report_has_one_timeline_per_case(split_run: Any) -> None:
    doc, page = split_run
    html = page.read_text(encoding="utf-8")
    assert "Scheduler trace" in html and doc["reading"][:40] in html
    pngs = sorted(p.name for p in (page.parent / "plots").glob("*.png"))
    assert pngs == ["trace-1-pipe-process-split.png", "trace-2-pipe-thread-split.png"]
    assert html.count("<img ") == 2


def test_report_command_reads_trace_json(split_run: Any, tmp_path: Path) -> None:
    doc, _ = split_run
    src = tmp_path / "x.json"
    src.write_text(json.dumps(doc))
    r = subprocess.run(
        [sys.executable, "-m", "daemonkit", "report", str(src), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "plots" / "trace-1-pipe-process-split.png").is_file()


@pytest.mark.needs("chromium")
def test_timeline_renders_in_chromium(split_run: Any, tmp_path: Path) -> None:
    _, page = split_run
    probed = page.read_text(encoding="utf-8").replace(CSP, CSP + "; script-src 'unsafe-inline'", 1)
    copy = page.with_name("probed.html")
    copy.write_text(probed.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    r = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", copy.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'data-images="2"' in r.stdout and 'data-broken="0"' in r.stdout
    assert 'data-errors="[]"' in r.stdout
    shot = tmp_path / "page.png"
    r = chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    with Image.open(shot) as im:
        counts = {c: n for n, c in im.convert("RGB").getcolors(maxcolors=1 << 20)}
    # The client's and the peer's bars (tab:blue, tab:orange) are on the first screen.
    assert counts.get((31, 119, 180), 0) > 100 and counts.get((255, 127, 14), 0) > 100
