"""The bench runner and the lessons under faults: peers killed, the runner killed, Ctrl-C.

Each run is a real ``daemonkit`` process in its own session. The moments of the faults come
from a seeded generator (``DK_RELIABILITY_SEED``), so a failure reproduces with its seed. After
every run the kernel is asked what is left: System V tables (/proc/sysvipc), /dev/shm,
/dev/mqueue and the runtime dir must hold nothing owned by the runner or its peers, and no
process of the run may still be alive (by session id and by parent pid, from /proc).

The default suite runs a few of each; ``scripts/stress`` runs 50 peer kills across every
channel and 20 interrupts each of ``bench`` and ``lessons``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import posix_ipc
import pytest

from daemonkit.channels import channel_class, channel_names
from daemonkit.cleanup import list_objects
from daemonkit.runtime import pid_alive, proc_stat, resolve_runtime_dir

SEED = int(os.environ.get("DK_RELIABILITY_SEED", "20261127"))
CLI = [sys.executable, "-m", "daemonkit"]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the name ([0] state, [1] ppid, [3] session), or None."""
    try:
        return proc_stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None


_live = pid_alive  # pid 1 here does not reap: zombies count as gone


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _children(pid: int) -> set[int]:
    return {p for p in _pids() if (st := _stat(p)) and int(st[1]) == pid and st[0] != "Z"}


def _left_alive(run: Run) -> list[int]:
    """Processes of the run still alive: in its session, or ever seen as its children."""
    return [
        p
        for p in _pids()
        if _live(p) and (((st := _stat(p)) and int(st[3]) == run.proc.pid) or p in run.seen)
    ]


def _objects_of(pids: set[int]) -> list[object]:
    return [o for o in list_objects([resolve_runtime_dir()]) if o.owner in pids]


@dataclass
class Run:
    proc: subprocess.Popen[str]
    seen: set[int] = field(default_factory=set)  # every child pid observed during the run

    def watch(self) -> set[int]:
        kids = _children(self.proc.pid)
        self.seen |= kids
        return kids

    def finish(self, timeout: float = 60) -> tuple[str, str]:
        try:
            return self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def assert_nothing_left(self) -> None:
        pids = {self.proc.pid, *self.seen}
        deadline = time.monotonic() + 5
        while (left := _left_alive(self)) and time.monotonic() < deadline:
            time.sleep(0.05)  # a peer may still be on its way out
        assert not left, f"processes left alive: {left}"
        assert _objects_of(pids) == [], "kernel objects or runtime files left behind"


def _start(*args: str) -> Run:
    return Run(
        subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: the Ctrl-C target
        )
    )


def process_channels() -> list[str]:
    """Channels that can run with a forked peer (and so make objects another process uses)."""
    out = []
    for name in channel_names():
        try:
            cls = channel_class(name)
        except ImportError:
            continue
        if "process" in cls.peer_kinds:
            out.append(name)
    return out


# -- SIGKILL a peer at random moments ---------------------------------------------------------


def _kill_peers(rng: random.Random, channels: list[str], tmp: Path) -> tuple[int, int]:
    """One bench run over *channels*; each forked peer is killed at a random moment between
    its fork and 0.4 s later (setup, warm-up, timed loop or teardown). Returns (kills
    delivered, cases reported as failed)."""
    out = tmp / "kills.json"
    run = _start(
        "bench", "--channels", ",".join(channels), "--peer", "process", "--sizes", "64",
        "--duration", "0.3", "--warmup", "20", "--json", str(out),
    )  # fmt: skip
    plan: dict[int, float] = {}  # peer pid -> when to kill it
    killed: set[int] = set()
    try:
        while run.proc.poll() is None:
            now = time.monotonic()
            for kid in run.watch() - plan.keys():
                plan[kid] = now + rng.uniform(0.0, 0.4)
            for kid, when in plan.items():
                if kid not in killed and now >= when and _live(kid):
                    os.kill(kid, signal.SIGKILL)
                    killed.add(kid)
            time.sleep(0.005)
        stdout, stderr = run.finish()
    finally:
        if run.proc.poll() is None:
            run.finish(timeout=1)
    assert "Traceback" not in stderr, stderr
    results = json.loads(out.read_text())["results"]
    assert [r["channel"] for r in results] == channels  # it went on after every failure
    failed = [r for r in results if r["error"]]
    for r in results:
        if not r["error"]:
            assert r["iterations"] > 0 and r["latency_ns"]
    assert run.proc.returncode == (1 if failed else 0), stderr
    assert len(failed) <= len(killed)
    for r in failed:  # that case's error names the peer's death, and the table lists it
        assert "SIGKILL" in r["error"], r
        assert r["channel"] in stdout
    run.assert_nothing_left()
    out.unlink()
    return len(killed), len(failed)


def test_peers_killed_at_random_moments_short(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    channels = [c for c in ["pipe", "unix-stream", "sysv-shm", "posix-mq", "signal", "posix-sem"]
                if c in process_channels()]  # fmt: skip
    kills, failed = _kill_peers(rng, channels, tmp_path)
    print(f"\npeer kills: {kills} delivered, {failed} cases failed, seed {SEED}")
    assert kills >= 1 and failed >= 1  # (a peer may finish before its moment comes)


@pytest.mark.stress
def test_fifty_peer_kills_across_all_channels(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    channels = process_channels()
    kills = failed = runs = 0
    while kills < 50:
        k, f = _kill_peers(rng, channels, tmp_path)
        kills, failed, runs = kills + k, failed + f, runs + 1
    print(f"\npeer kills: {kills} delivered in {runs} runs over {len(channels)} channels, "
          f"{failed} cases failed with the peer's death, seed {SEED}")  # fmt: skip


# -- SIGKILL the runner ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["posix-shm", "mp-shm", "shm-spin"])
def test_runner_killed_then_cleanup_removes_its_leftovers_and_only_those(channel: str) -> None:
    """mp-shm: multiprocessing's resource tracker must neither unlink the segment behind our
    back nor be left running; shm-spin: a segment named like the others."""
    rdir = resolve_runtime_dir()
    run = _start(
        "bench", "--channels", channel, "--peer", "process", "--duration", "30",
        "--warmup", "10",
    )  # fmt: skip
    decoy_name = f"/dk.{os.getpid()}.decoy.0"  # ours, alive: cleanup must leave it
    foreign = f"/dkr-foreign-{os.getpid()}"  # not daemonkit's naming at all
    decoys = [
        posix_ipc.SharedMemory(n, posix_ipc.O_CREX, mode=0o600, size=4096)
        for n in (decoy_name, foreign)
    ]
    try:
        deadline = time.monotonic() + 20
        while not _objects_of({run.proc.pid}):
            assert run.proc.poll() is None and time.monotonic() < deadline, run.proc.stderr
            run.watch()
            time.sleep(0.01)
        time.sleep(0.3)
        run.watch()
        left = _objects_of({run.proc.pid})
        os.kill(run.proc.pid, signal.SIGKILL)  # the runner only: no finally block runs
        run.proc.wait()  # reaped: its pid no longer names a process
        assert _objects_of({run.proc.pid}) == left  # what it left, still there
        res = subprocess.run(
            [*CLI, "cleanup", "--runtime-dir", str(rdir)], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        removed = [line for line in res.stdout.splitlines() if line.startswith("removed ")]
        for obj in left:
            assert any(obj.name in line for line in removed), (obj, res.stdout)
        for line in removed[:-1]:  # the last line is the summary
            owner = int(line.rsplit("owner pid ", 1)[1].split()[0])
            assert not _live(owner), line  # only objects of dead processes
        assert _objects_of({run.proc.pid}) == []
        for name in (decoy_name, foreign):
            assert Path("/dev/shm" + name).exists(), f"cleanup removed {name}"
        run.assert_nothing_left()  # its peer noticed the death and went too
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        for d in decoys:
            d.close_fd()
            d.unlink()


# -- Ctrl-C at random moments ------------------------------------------------------------------


def _interrupt(args: list[str], delay: float) -> tuple[int, str]:
    run = _start(*args)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and run.proc.poll() is None:
        run.watch()
        time.sleep(0.01)
    if run.proc.poll() is None:
        os.killpg(run.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    _, stderr = run.finish(timeout=60)
    run.watch()
    run.assert_nothing_left()
    return run.proc.returncode, stderr


def _check_interrupts(rng: random.Random, n: int, args: list[str], span: float) -> list[float]:
    moments = []
    for _ in range(n):
        # From STARTUP on: before that CPython is still initializing itself (a Ctrl-C in
        # its site import is its own "Fatal Python error"), and no daemonkit code runs yet.
        delay = rng.uniform(STARTUP, span)
        code, stderr = _interrupt(args, delay)
        assert "Traceback" not in stderr, (delay, stderr)
        if code == 0:  # it finished before the signal: nothing to interrupt
            continue
        assert code == 130, (delay, code, stderr)
        assert stderr.strip().splitlines()[-1] == "daemonkit: interrupted", (delay, stderr)
        moments.append(round(delay, 2))
    return moments


STARTUP = 0.5  # s; python -m daemonkit reaches main() in about 0.1 s here
BENCH = ["bench", "--channels", "pipe,sysv-shm,posix-mq,eventfd", "--peer", "both",
         "--duration", "0.4", "--warmup", "10"]  # fmt: skip
LESSONS = ["lessons", "--quick", "ctx-switch", "communication"]
BENCH_S, LESSONS_S = 4.0, 3.5  # about how long each runs uninterrupted here


def test_ctrl_c_at_random_moments_short() -> None:
    rng = random.Random(SEED)
    b = _check_interrupts(rng, 2, BENCH, BENCH_S)
    lessons = _check_interrupts(rng, 2, LESSONS, LESSONS_S)
    print(f"\nCtrl-C: bench at {b} s, lessons at {lessons} s: exit 130, nothing left")


@pytest.mark.stress
def test_ctrl_c_at_random_moments_many() -> None:
    rng = random.Random(SEED + 7)
    b = _check_interrupts(rng, 20, BENCH, BENCH_S)
    lessons = _check_interrupts(rng, 20, LESSONS, LESSONS_S)
    print(f"\nCtrl-C: bench {len(b)} of 20 interrupted, lessons {len(lessons)} of 20; seed {SEED}")
