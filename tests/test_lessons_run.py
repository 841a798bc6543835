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
from rich.cells import cell_len

from daemonkit.lessons import (
    address_space,
    communication,
    creation,
    ctx_switch,
    daemon,
    semaphore_vs_signal,
)
from daemonkit.lessons.base import LESSONS, Lesson, load
from daemonkit.lessons.render import render_verdict
from daemonkit.lessons.report import LessonResult, to_json
from daemonkit.lessons.text import translator
from daemonkit.machine import facts
from daemonkit.runtime import pid_alive

LABELS = {"holds", "partly holds", "does not hold", "inconclusive"}


def _ticks() -> tuple[list[str], Any]:
    seen: list[str] = []
    return seen, seen.append


def _views(lesson: Any, m: dict[str, Any]) -> None:
    """Verdicts and tables of real measurements render in both languages, and as JSON."""
    vs = lesson.verdicts(m, facts())
    assert vs and all(v.label in LABELS for v in vs)
    for lang in ("en", "zh"):
        for t in lesson.tables(m, translator(lang)):
            assert all(len(row) == len(t.columns) for row in t.rows)
        for v in vs:
            assert render_verdict(v.as_json(), lang)["text"]
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
    assert len(seen) == 2 + 1 + 3  # one tick per W, the page-strided set, one per placement
    assert ctx_switch.steps(True) == len(ctx_switch.W_QUICK) + 1 + 3
    assert [r["w"] for r in m["sweep"]] == [0, 64 << 10]
    assert m["tlb"]["stride"] == 4096 and m["tlb"]["w"] == ctx_switch.TLB_PAGES * 4096
    for r in [*m["sweep"], m["tlb"]]:
        for k in ("thread", "process"):
            # Two peers pinned to one CPU, blocking in read: every hop is a switch.
            assert r[k]["switches_per_rtt"] >= ctx_switch.MIN_SWITCHES
            s = r[k]["switch_ns"]
            assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["n"] == 2
        assert r["hot_read_ns"]["median"] >= 0
    assert {p["placement"] for p in m["placement"]} == {"same", "split", "none"}
    assert (m["perf_unavailable"] is None) or isinstance(m["perf_unavailable"], str)
    _views(ctx_switch, m)


def test_creation_runs_at_the_resident_sizes_it_controls() -> None:
    seen, tick = _ticks()
    big = 128 << 20
    m = creation.run(True, tick, n=3, big=big)
    assert len(seen) == 2
    small, large = m["sizes"]
    # The worker's VmRSS, as the kernel counted it: padded to the target, really resident.
    assert creation.SMALL * 0.95 <= small["rss"] <= creation.SMALL * 1.5
    assert big * 0.95 <= large["rss"] <= big * 1.2
    for size in m["sizes"]:
        for k in creation.METHODS:
            assert size[k]["n"] == 3 and size[k]["median"] > 0
    _views(creation, m)


def test_communication_reports_every_route_or_its_error() -> None:
    seen, tick = _ticks()
    m = communication.run(True, tick, sizes=(0, 4096), reps=1, batch_s=0.005)
    assert len(m["routes"]) == len(communication.ROUTES)
    assert len(seen) == communication.steps(True) == len(communication.ROUTES) + 1
    # The confounder: a thread and a process handoff split across two CPUs, or why not.
    assert m["split"] and all(
        ("rtt_ns" in p) or ("error" in p) or ("unavailable" in p) for p in m["split"]
    )
    for r in m["routes"]:
        for p in r["points"]:
            assert ("rtt_ns" in p) != ("error" in p)
    pipe = next(r for r in m["routes"] if r["channel"] == "pipe" and r["peer"] == "process")
    assert all("rtt_ns" in p for p in pipe["points"])  # the reference channel always works
    _views(communication, m)


def test_standard_signals_coalesce_realtime_signals_queue() -> None:
    seen, tick = _ticks()
    m = semaphore_vs_signal.run(True, tick, k=200, workers=3, increments=2000)
    assert len(seen) == semaphore_vs_signal.steps(True)
    assert m["sem_waits"] == 200
    assert m["mutex"]["lost_locked"] == 0  # the semaphore let no update be lost
    assert m["mutex"]["total"] == 6000 and m["mutex"]["lost_unlocked"] >= 0
    for kind in ("semaphore", "signal"):
        assert m["handoff_rtt_ns"][kind]["n"] == 5 and m["handoff_rtt_ns"][kind]["median"] > 0
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
    # Its parent is init (pid 1 of this namespace) or a subreaper above this test.
    p = m["parent"]
    assert p["ppid"] == d["ppid"] and (p["is_init"] or p["subreaper"]), p
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
    done = _cli("--quick", "--json", str(out), env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    # Every table fits 80 columns and no cell is cut: a long cell folds onto more lines.
    assert "…" not in done.stdout
    assert max(cell_len(line) for line in done.stdout.splitlines()) <= 80
    doc = json.loads(out.read_text())
    assert doc["schema"] == "daemonkit.lessons/2" and doc["quick"] is True
    assert [x["name"] for x in doc["lessons"]] == list(LESSONS)
    f = doc["machine"]["facts"]
    assert {
        "pcid",
        "invpcid",
        "kpti",
        "meltdown",
        "hypervisor",
        "caches",
        "llc_bytes",
        "gil",
    } <= set(f)
    for lesson in doc["lessons"]:
        assert lesson["measurements"] and lesson["verdicts"]
        for v in lesson["verdicts"]:
            assert v["label"] in LABELS and v["text"] and v["threshold"]  # keys, not sentences
            for d in v["decisions"]:  # an undecided interval is printed with its boundary
                if d["label"] == "inconclusive" and d["straddles"] is not None:
                    assert d["interval"]["lo"] < d["straddles"] <= d["interval"]["hi"]
    assert "Verdict C2" in done.stdout and "Traceback" not in done.stderr
    assert "interval" in done.stdout and "threshold:" in done.stdout


def test_cli_chinese_json_on_stdout() -> None:
    done = _cli("semaphore-vs-signal", "--lang", "zh", "--json", "-")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # the report went to stderr, the JSON alone to stdout
    assert doc["lang"] == "zh"
    assert doc["lessons"][0]["verdicts"][0]["label"] == "holds"
    assert "结论 C5：成立。" in done.stderr


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
    mod: Lesson = load(name)
    assert name == mod.NAME and mod.CLAIMS
    assert callable(mod.run) and callable(mod.verdicts) and callable(mod.tables)
    assert mod.steps(True) >= 1 and mod.steps(False) >= mod.steps(True)
    # Its words beside it: the claim and the method, in both languages.
    text = mod.TEXT
    assert f"claim.{name}" in text["en"] and f"method.{name}" in text["zh"]
    assert set(text["en"]) == set(text["zh"])


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
