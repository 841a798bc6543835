"""``daemonkit trace``: the scheduler's events, recorded for real, agree with the kernel's counts.

What is checked (with perf and root; skipped with one line where recording cannot work, a
failure instead under ``DAEMONKIT_REQUIRE=trace`` or ``all``, see tests/facilities.py):

* a pipe ping-pong on one CPU: every round trip switches the client out once and the peer
  once (2 per round trip in all), the trace's count agrees with getrusage(2) within 10 %,
  the timeline is three round trips the client timed, in each of which the client and the
  peer both ran on that CPU (whatever else ran there: the window is the client's own round
  trips, not a guess), with wake-ups between them, and the document is the versioned
  ``daemonkit.trace/1``;
* nothing is left: no perf process, no perf data directory, the ftrace state (mounts,
  ``tracing_on``, ``current_tracer``, the enabled events, the instances) as it was, also
  after a Ctrl-C in the middle of a recording (exit 130);
* without the privilege or the tool: one line naming what is missing, exit 77;
* ``perf script`` lines (a thread's name with a blank, lost events) parse as they should.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from facilities import require
from procfs import descendants, in_session

from daemonkit.trace import perf
from daemonkit.trace.analysis import lock_kind
from daemonkit.trace.capture import lock_regions
from daemonkit.trace.events import FutexWait, Lost, Switch, Wake, parse_script

DAEMONKIT = [sys.executable, "-m", "daemonkit"]
TRACEFS = "/sys/kernel/tracing"
WHY = perf.missing()
needs_trace = pytest.mark.usefixtures("trace_possible")


@pytest.fixture
def trace_possible() -> None:
    if WHY is not None:
        require("trace", f"cannot record the scheduler's events: {WHY}")


def tracing_state() -> dict[str, Any]:
    """What perf must leave as found: where tracefs is mounted and, in each mount, the
    global tracer's switches, the events enabled and the instances."""
    state: dict[str, Any] = {"mounts": perf.tracefs_mounts()}
    for mount in state["mounts"]:
        root = Path(mount)
        state[mount] = {
            name: (root / name).read_text()
            for name in ("tracing_on", "current_tracer", "set_event")
        }
        state[mount]["instances"] = sorted(p.name for p in (root / "instances").iterdir())
    return state


def leftovers(pid: int) -> list[str]:
    """perf data directories and perf processes of the daemonkit process *pid* still there."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    found = [str(p) for p in tmp.glob(f"daemonkit-trace-{pid}-*")]
    mark = f"daemonkit-trace-{pid}-".encode()
    for proc in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{proc}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"perf\0record") and mark in cmd:
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def tracefs() -> Iterator[None]:
    """tracefs mounted for the module, as on most systems, so that the tracer's state can be
    read before and after (and perf has nothing to mount); unmounted after if it was not."""
    if perf.tracefs_mounts():
        yield
        return
    if os.geteuid() != 0:
        require("trace", "tracefs is not mounted and only root may mount it")
    subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", TRACEFS], check=False)


def trace(*args: str, timeout: float = 120) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``daemonkit trace ARGS``; its pid (which names its perf data directory) and result."""
    with subprocess.Popen(
        [*DAEMONKIT, "trace", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        out, err = proc.communicate(timeout=timeout)
    return proc.pid, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def same_cpu(
    tmp_path_factory: pytest.TempPathFactory, tracefs: None
) -> tuple[dict[str, Any], str, bool]:
    """One traced run, both peers, both ends on one CPU: its document, its output, and
    whether the tracing state and /tmp were left as found."""
    if WHY is not None:
        require("trace", f"cannot record the scheduler's events: {WHY}")
    out = tmp_path_factory.mktemp("trace") / "s.json"
    before = tracing_state()
    pid, r = trace(
        "--channels",
        "pipe",
        "--peer",
        "both",
        "--cpu",
        "same",
        "--round-trips",
        "400",
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    untouched = tracing_state() == before and leftovers(pid) == []
    return doc, r.stdout, untouched


@needs_trace
def test_process_peer_on_one_cpu_switches_twice_per_round_trip(same_cpu: Any) -> None:
    doc, _, _ = same_cpu
    assert doc["schema"] == "daemonkit.trace/1"
    case = next(c for c in doc["cases"] if c["peer"] == "process")
    sw = case["switches_per_round_trip"]
    # Each side must leave the CPU once per round trip for the other to run on it.
    assert 0.95 <= sw["trace"]["client"]["total"] <= 2.0  # more: preempted by other tasks
    assert 0.95 <= sw["trace"]["peer"]["total"] <= 2.0
    assert case["cpu_time"]["cpus"] == case["pinning"]["client"] == case["pinning"]["peer"]
    assert case["lost_events"] == 0


@needs_trace
def test_trace_agrees_with_getrusage(same_cpu: Any) -> None:
    doc, _, _ = same_cpu
    for case in doc["cases"]:
        sw = case["switches_per_round_trip"]
        t, r = sw["trace"]["total"], sw["getrusage"]["total"]
        assert abs(t - r) <= 0.10 * r, (case["peer"], t, r)
        assert sw["agreement"]["agree"] is True
    agreement = next(f for f in doc["findings"] if f["condition"] == "agreement")
    assert agreement["holds"] and agreement["threshold"] == "<= 10 %"


def ran_in(lane: list[list[Any]], role: str, lo: int, hi: int) -> bool:
    """Whether *role* held the lane's CPU for some time between *lo* and *hi*."""
    return any(r == role and min(e, hi) > max(s, lo) for s, e, r, _, _ in lane)


@needs_trace
def test_timeline_shows_the_two_ends_taking_turns(same_cpu: Any) -> None:
    doc, stdout, _ = same_cpu
    for case in doc["cases"]:
        tl = case["timeline"]
        (cpu,) = case["pinning"]["client"]
        lane = tl["lanes"][str(cpu)]
        # The window is three round trips the client timed, back to back, from its clock.
        k, first = tl["round_trips"], tl["first"]
        assert k == 3 and 0 <= first <= case["round_trips"] - k
        trips = list(zip(tl["starts_ns"], tl["round_trip_ns"], strict=True))
        assert trips[0][0] == 0 and tl["span_ns"] == trips[-1][0] + trips[-1][1]
        assert all(a + rt <= b for (a, rt), (b, _) in itertools.pairwise(trips))
        # In each of them both ends ran on the one CPU (the peer must, to echo).
        for start, rt in trips:
            assert ran_in(lane, "client", start, start + rt), (case["peer"], start, lane)
            assert ran_in(lane, "peer", start, start + rt), (case["peer"], start, lane)
        # They woke each other (one way or the other: on one CPU the side that is preempted
        # rather than asleep needs no wake-up; a round trip may even need none, when a tick
        # hands the CPU from the client to a runnable peer between its send and its receive).
        ends = {"client", "peer"}
        hops = [w for w in tl["wakeups"] if {w["waker"], w["woken"]} == ends]
        assert hops, tl["wakeups"]
        assert all(w["ran_ts"] is None or w["ran_ts"] >= w["ts"] for w in hops)
        assert case["wakeups"]["all"]["p50_ns"] > 0
        shown = f"round trips {first + 1}-{first + k} of 400 as the client timed them"
        assert shown in stdout
    assert f"cpu{cpu}" in stdout
    assert f"C client (cpu{cpu}) -> P peer" in stdout or f"P peer (cpu{cpu}) -> C client" in stdout
    # A stretch that is not typical (other tasks held the CPU in every one) is said to be.
    atypical = [c for c in doc["cases"] if not c["timeline"]["typical"]]
    assert stdout.count("the nearest are shown") == len(atypical)
    assert "Reading:" in stdout


@needs_trace
def test_every_finding_has_its_threshold(same_cpu: Any) -> None:
    doc, _, _ = same_cpu
    process = next(c for c in doc["cases"] if c["peer"] == "process")
    assert process["futex_sleeps_per_round_trip"]["gil"] == 0  # one thread: no one to wait for
    names = {f["condition"] for f in doc["findings"]}
    assert {"gil", "thread_switches", "wake_share", "preempt", "others"} <= names
    for f in doc["findings"]:
        assert f["threshold"] and f["text"] and isinstance(f["holds"], bool)


@needs_trace
def test_tracing_state_and_tmp_left_as_found(same_cpu: Any) -> None:
    _, _, untouched = same_cpu
    assert untouched


@needs_trace
def test_ctrl_c_while_recording_exits_130_and_leaves_nothing(tracefs: None) -> None:
    before = tracing_state()
    proc = _recording()
    try:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "daemonkit: interrupted"
    assert leftovers(proc.pid) == []
    assert tracing_state() == before


@needs_trace
def test_sigkilled_run_stops_perf_and_the_next_run_removes_its_data(tracefs: None) -> None:
    proc = _recording()
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs in it
    proc.communicate(timeout=30)
    # perf's workload (cat) reads a pipe whose last writer was the dead process: perf stops,
    # and the forked peer dies with its parent (PR_SET_PDEATHSIG).
    deadline = time.monotonic() + 30
    while in_session(proc.pid, live_only=True):
        assert time.monotonic() < deadline, in_session(proc.pid, live_only=True)
        time.sleep(0.1)
    left = leftovers(proc.pid)
    assert len(left) == 1 and "daemonkit-trace-" in left[0]  # its data directory, only
    _, r = trace("--channels", "pipe", "--peer", "process", "--round-trips", "50")
    assert r.returncode == 0, r.stderr
    assert leftovers(proc.pid) == []


def _recording() -> subprocess.Popen[str]:
    """``daemonkit trace`` in its own session, returned once its perf is recording."""
    proc = subprocess.Popen(
        [*DAEMONKIT, "trace", "--peer", "process", "--cpu", "split", "--round-trips", "2000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: a SIGINT to it is a Ctrl-C at its terminal
    )
    deadline = time.monotonic() + 60
    while not any(b"perf" in Path(f"/proc/{p}/comm").read_bytes() for p in _alive(proc.pid)):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"perf did not start: {proc.communicate()}")
        time.sleep(0.05)
    time.sleep(1.0)  # perf is recording and the round trips run
    return proc


def _alive(pid: int) -> list[int]:
    out = []
    for p in descendants(pid):
        try:
            Path(f"/proc/{p}/comm").read_bytes()
            out.append(p)
        except OSError:
            continue
    return out


@pytest.mark.needs("root")  # to drop to another user
def test_not_root_says_what_is_missing_and_exits_77() -> None:
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *DAEMONKIT, "trace"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": "/nonexistent"},
    )
    paranoid = int(perf.PARANOID.read_text())
    if paranoid <= -1:
        pytest.skip("perf_event_paranoid is -1 here: an unprivileged user may record")
    assert r.returncode == 77, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("daemonkit: cannot record the scheduler's events: ")
    assert "not root (uid 65534)" in line and f"perf_event_paranoid is {paranoid}" in line


def test_without_perf_says_so_and_exits_77() -> None:
    r = subprocess.run(
        [*DAEMONKIT, "trace"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": "/nonexistent"},
    )
    assert r.returncode == 77, r.stderr
    assert r.stderr == (
        "daemonkit: cannot record the scheduler's events: "
        "perf is not installed (Debian package linux-perf)\n"
    )


def test_perf_script_lines_parse() -> None:
    text = (
        "  1121 [000]   418.231632361: sched:sched_waking: comm=kworker/0:1 H pid=18 prio=0 "
        "target_cpu=001\n"
        "  1121 [000]   418.231640825: sched:sched_switch: prev_comm=python3 prev_pid=1121 "
        "prev_prio=120 prev_state=R+ ==> next_comm=swapper/0 next_pid=0 next_prio=120\n"
        "  1122 [001]   418.231650000: syscalls:sys_enter_futex: uaddr: 0x7f00, op: 0x00000089, "
        "val: 0x00000000, utime: 0x00000000, uaddr2: 0x00000000, val3: 0xffffffff\n"
        "  1122 [001]   418.231650100: syscalls:sys_enter_futex: uaddr: 0x7f00, op: 0x00000081, "
        "val: 0x00000001, utime: 0x00000000, uaddr2: 0x00000000, val3: 0x00000000\n"
        "  1122 [001]   418.231660000: syscalls:sys_exit_futex: 0x0\n"
        "     0 [001]   418.231670000: LOST 7 events!\n"
    )
    events, lost = parse_script(text)
    assert lost == 7
    wake, switch, wait, done, gone = events
    assert gone == Lost(418231670000, 1, 7)  # where: the timeline keeps clear of it
    assert wake == Wake(418231632361, 0, 1121, 18, "kworker/0:1 H", 1, "waking")
    assert isinstance(switch, Switch) and switch.preempted and switch.next_pid == 0
    # op 0x89: FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG; 0x81 (a wake) is not a wait.
    assert wait == FutexWait(418231650000, 1, 1122, done=False, uaddr=0x7F00)
    assert done == FutexWait(418231660000, 1, 1122, done=True)


def test_switches_out_of_idle_come_from_the_switch_records() -> None:
    # perf records no tracepoint while a CPU runs its idle task: the switch from swapper/1 to
    # the peer (1122) is only in the peer's own IN record. Once the tracepoint has a switch
    # (to 1123), the IN record of that same switch adds nothing.
    text = (
        "  1122 [001]   418.231600000: sched:sched_switch: prev_comm=py peer prev_pid=1122 "
        "prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120\n"
        "  1121 [000]   418.231610000: sched:sched_waking: comm=py peer pid=1122 prio=120 "
        "target_cpu=001\n"
        "  1122 [001]   418.231630000: PERF_RECORD_SWITCH_CPU_WIDE IN           "
        "prev pid/tid:     0/0    \n"
        "  1122 [001]   418.231640000: PERF_RECORD_SWITCH_CPU_WIDE OUT          "
        "next pid/tid:  1123/1123 \n"
        "  1122 [001]   418.231640000: sched:sched_switch: prev_comm=py peer prev_pid=1122 "
        "prev_prio=120 prev_state=S ==> next_comm=x next_pid=1123 next_prio=120\n"
        "  1123 [001]   418.231641000: PERF_RECORD_SWITCH_CPU_WIDE IN           "
        "prev pid/tid:  1122/1122 \n"
        "    -1 [001]   418.231650000: sched:sched_switch: prev_comm=x prev_pid=1123 "
        "prev_prio=120 prev_state=X ==> next_comm=swapper/1 next_pid=0 next_prio=120\n"
    )
    events, _ = parse_script(text)
    switches = [e for e in events if isinstance(e, Switch)]
    assert [(s.ts, s.prev_pid, s.next_pid) for s in switches] == [
        (418231600000, 1122, 0),
        (418231630000, 0, 1122),  # from the IN record, named as the tracepoint names them
        (418231640000, 1122, 1123),
        (418231650000, 1123, 0),  # an exiting task's switch (perf prints its tid as -1)
    ]
    assert switches[1] == Switch(418231630000, 1, 0, "swapper/1", "R", 1122, "py peer")


def test_the_gil_is_named_by_where_its_futex_lives() -> None:
    # CPython keeps the GIL in _PyRuntime, in the interpreter's own data: /proc/PID/maps shows
    # which file that memory belongs to.
    runtime = ctypes.addressof(ctypes.c_int.in_dll(ctypes.pythonapi, "_PyRuntime"))
    regions = lock_regions(os.getpid())
    assert lock_kind(runtime, regions) == "gil"
    heap = ctypes.addressof(ctypes.create_string_buffer(64))  # malloc'd: no lock of ours
    assert lock_kind(heap, regions) == "other"
