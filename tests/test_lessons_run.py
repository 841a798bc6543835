"""Each lesson's experiment, run for real with small parameters, and the CLI around them.

What the kernel guarantees is asserted (a forked child's write is invisible, a standard
signal coalesces, every hop of a one-CPU token ring is a context switch, a daemon survives a
hang-up); timings are only checked for being well formed, never against targets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from facilities import require
from procfs import descendants

from daemonkit.commands.lessons import LESSONS
from daemonkit.lessons import (
    address_space,
    communication,
    creation,
    ctx_switch,
    daemon,
    semaphore_vs_signal,
)
from daemonkit.lessons.report import LessonResult, to_json
from daemonkit.lessons.text import translator
from daemonkit.runtime import pid_alive

LABELS = {"holds", "partly holds", "does not hold", "inconclusive"}


def _ticks() -> tuple[list[str], Any]:
    seen: list[str] = []
    return seen, seen.append


def _views(lesson: Any, m: dict[str, Any]) -> None:
    """Verdicts and tables of real measurements render in both languages, and as JSON."""
    vs = lesson.verdicts(m)
    assert vs and all(v.label in LABELS for v in vs)
    for lang in ("en", "zh"):
        for t in lesson.tables(m, translator(lang)):
            assert all(len(row) == len(t.columns) for row in t.rows)
    doc = to_json([LessonResult(lesson.NAME, lesson.CLAIMS, m, vs, 0.0)], "en", True)
    json.loads(json.dumps(doc))  # plain data only


def test_address_space_shows_what_the_kernel_shares() -> None:
    seen, tick = _ticks()
    m = address_space.run(True, tick, pages=256)
    assert seen
    obs = address_space.observations(m)
    assert all(obs.values()), obs  # facts of clone(2) and fork(2), not timings
    assert m["child_write"]["write_faults"] - m["child_write"]["read_faults"] >= 0.9 * 256
    _views(address_space, m)


def test_ctx_switch_ring_counts_real_switches() -> None:
    seen, tick = _ticks()
    m = ctx_switch.run(True, tick, ws=(0, 64 << 10), reps=2, batch_s=0.01)
    assert len(seen) == 2 + 3  # one tick per W, one per placement
    assert ctx_switch.steps(True) == len(ctx_switch.W_QUICK) + 3
    assert [r["w"] for r in m["sweep"]] == [0, 64 << 10]
    for r in m["sweep"]:
        for k in ("thread", "process"):
            # Two peers pinned to one CPU, blocking in read: every hop is a switch.
            assert r[k]["switches_per_rtt"] >= ctx_switch.MIN_SWITCHES
            s = r[k]["switch_ns"]
            assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["n"] == 2
        assert r["hot_read_ns"]["median"] >= 0
    assert {p["placement"] for p in m["placement"]} == {"same", "split", "none"}
    assert (m["perf_unavailable"] is None) or isinstance(m["perf_unavailable"], str)
    _views(ctx_switch, m)


def test_creation_touches_and_releases_the_ballast() -> None:
    seen, tick = _ticks()
    big = 128 << 20
    m = creation.run(True, tick, n=3, big=big)
    assert len(seen) == 2
    small, large = m["sizes"]
    assert large["rss"] - small["rss"] >= big * 0.9  # really resident, not just reserved
    assert m["rss_after_release"] < large["rss"] - big * 0.9  # given back
    for size in m["sizes"]:
        for k in creation.METHODS:
            assert size[k]["n"] == 3 and size[k]["median"] > 0
    _views(creation, m)


def test_communication_reports_every_route_or_its_error() -> None:
    seen, tick = _ticks()
    m = communication.run(True, tick, sizes=(0, 4096), reps=1, batch_s=0.005)
    assert len(m["routes"]) == len(communication.ROUTES) == len(seen) == communication.steps(True)
    for r in m["routes"]:
        for p in r["points"]:
            assert ("rtt_ns" in p) != ("error" in p)
    pipe = next(r for r in m["routes"] if r["channel"] == "pipe" and r["peer"] == "process")
    assert all("rtt_ns" in p for p in pipe["points"])  # the reference channel always works
    _views(communication, m)


def test_standard_signals_coalesce_realtime_signals_queue() -> None:
    seen, tick = _ticks()
    m = semaphore_vs_signal.run(True, tick, k=200)
    assert seen
    assert m["sem_waits"] == 200
    assert m["standard_delivered"] == 1 and m["standard_values"] == [0]
    assert m["realtime_delivered"] == m["realtime_sent"] == 200 and m["realtime_in_order"]
    _views(semaphore_vs_signal, m)


def test_daemon_survives_the_hangup_and_is_stopped_afterwards() -> None:
    seen, tick = _ticks()
    m = daemon.run(True, tick)
    assert seen
    assert m["started"], m.get("start_message")
    assert m["job_gone"] and m["daemon_alive"]
    assert m["shell_signal"] == "SIGHUP"
    d = m["before"]["daemon"]
    assert d["tty"] == "-" and d["sid"] != d["pid"] and d["cwd"] == "/"
    assert daemon.proc_props(d["pid"]) is None  # stopped before run() returned
    _views(daemon, m)


# -- the command line --------------------------------------------------------------------


def _cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemonkit", "lessons", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_cli_quick_json_has_every_lesson(tmp_path: Path) -> None:
    out = tmp_path / "lessons.json"
    done = _cli("--quick", "--json", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "daemonkit.lessons/1" and doc["quick"] is True
    assert [x["name"] for x in doc["lessons"]] == list(LESSONS)
    for lesson in doc["lessons"]:
        assert lesson["claim"] and lesson["method"] and lesson["measurements"]
        assert lesson["verdict"]["label"] in LABELS
        assert lesson["verdict"]["threshold"]
    assert "Verdict C2" in done.stdout and "Traceback" not in done.stderr


def test_cli_chinese_json_on_stdout() -> None:
    done = _cli("semaphore-vs-signal", "--lang", "zh", "--json", "-")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # the report went to stderr, the JSON alone to stdout
    assert doc["lang"] == "zh"
    assert doc["lessons"][0]["verdict"]["label_text"] == "成立"
    assert "结论 C5" in done.stderr


def test_cli_unknown_lesson_is_a_one_line_usage_error() -> None:
    done = _cli("no-such-lesson")
    assert done.returncode == 2
    assert done.stderr.startswith("daemonkit: unknown lesson") and done.stderr.count("\n") == 1


def test_cli_unwritable_json_path_fails_before_measuring(tmp_path: Path) -> None:
    done = _cli("creation", "--json", str(tmp_path / "missing" / "x.json"))
    assert done.returncode == 1 and "cannot write" in done.stderr
    assert "Verdict" not in done.stdout  # refused before any lesson ran


def test_cli_ctrl_c_exits_130_and_leaves_nothing() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemonkit", "lessons", "ctx-switch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)  # inside the ring by now: peers forked, pipes open
    kids = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    time.sleep(0.2)
    left = [p for p in kids if pid_alive(p)]
    assert not left, f"processes left behind: {left}"


@pytest.mark.parametrize("name", list(LESSONS))
def test_every_lesson_module_has_the_interface(name: str) -> None:
    from daemonkit.commands.lessons import load

    mod = load(name)
    assert name == mod.NAME and mod.CLAIMS
    assert callable(mod.run) and callable(mod.verdicts) and callable(mod.tables)
    assert mod.steps(True) >= 1 and mod.steps(False) >= mod.steps(True)
    assert os.path.basename(mod.__file__ or "").endswith(".py")


def test_perf_attach_counts_where_the_counters_exist() -> None:
    # Software events exist even on VMs without a PMU: they prove the attach path that the
    # ctx-switch lesson uses for dTLB and cache misses where the hardware has them.
    from daemonkit.lessons import _perf

    reason = _perf.probe(["context-switches"])
    if reason is not None:
        require("perf", f"perf cannot count here: {reason}")
    with _perf.attach([os.getpid()], ["context-switches"]) as counts:
        for _ in range(20):
            time.sleep(0.002)  # each sleep blocks: one voluntary switch
    assert counts["context-switches"] >= 20
    hw = _perf.probe(ctx_switch.PERF_EVENTS)
    assert hw is None or hw  # None, or a reason that says why
