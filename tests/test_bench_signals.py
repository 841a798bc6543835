"""`daemonkit bench` as a real process: a peer killed with SIGKILL, and Ctrl-C mid-run.

The bench runs in its own session, so the test can send SIGINT to its whole process group
(what a terminal does on Ctrl-C) and afterwards find any process it left behind by session id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from procfs import children, in_session

from daemonkit.channels import channel_class
from daemonkit.cleanup import list_objects
from daemonkit.runtime import resolve_runtime_dir


def _pipe_fds(pid: int) -> int:
    """Descriptors of *pid* open on pipes (a thread peer's channel and control pipes)."""
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            n += os.readlink(fd).startswith("pipe:")
        except FileNotFoundError:
            continue
    return n


def _objects_of(pid: int) -> list[object]:
    return [o for o in list_objects([resolve_runtime_dir()]) if o.owner == pid]


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 15
    while not cond():
        assert proc.poll() is None, f"bench ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within 15 s"
        time.sleep(0.01)


@contextlib.contextmanager
def _bench(*args: str) -> Iterator[subprocess.Popen[str]]:
    """`daemonkit bench ARGS` in its own session; killed with its group if a check fails."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemonkit", "bench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group and session: our Ctrl-C target
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_peer_killed_with_sigkill_is_that_cases_error(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    with _bench(
        "--channels", "pipe", "--peer", "both", "--sizes", "0,64", "--duration", "0.7",
        "--warmup", "10", "--json", str(out),
    ) as proc:  # fmt: skip
        _wait_for(lambda: bool(children(proc.pid)), proc, "forked peer")
        victim = min(children(proc.pid))
        time.sleep(0.2)  # let it get into the timed batches
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    results = json.loads(out.read_text())["results"]
    failed = [r for r in results if r["error"]]
    assert len(failed) == 1
    assert (failed[0]["channel"], failed[0]["peer"], failed[0]["size"]) == ("pipe", "process", 0)
    assert "SIGKILL" in failed[0]["error"] and failed[0]["latency_ns"] is None
    others = [r for r in results if not r["error"]]
    assert len(others) == 3 and all(r["iterations"] > 0 for r in others)
    assert "SIGKILL" in stdout  # the table's list of failures says it too


def _channel_with_named_objects() -> str:
    """A loadable channel whose kernel objects carry the owner's pid, else plain `pipe`."""
    for name in ("posix-shm", "sysv-shm", "posix-sem", "sysv-sem", "posix-mq", "sysv-mq"):
        try:
            channel_class(name)
        except ImportError:
            continue
        return name
    return "pipe"


@pytest.mark.parametrize("peer", ["process", "thread"])
def test_ctrl_c_exits_130_and_leaves_nothing(peer: str) -> None:
    channel = _channel_with_named_objects() if peer == "process" else "pipe"
    args = ("--channels", channel, "--peer", peer, "--duration", "20", "--warmup", "10")
    with _bench(*args) as proc:
        if peer == "process":
            _wait_for(lambda: bool(children(proc.pid)), proc, "forked peer")
            if channel != "pipe":
                _wait_for(lambda: bool(_objects_of(proc.pid)), proc, f"{channel} objects")
        else:  # stdout and stderr, then 4 control and 4 channel pipe ends once the peer runs
            _wait_for(lambda: _pipe_fds(proc.pid) >= 10, proc, "peer thread's pipes")
        time.sleep(0.5)  # well inside the timed batches
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "daemonkit: interrupted"
    assert _objects_of(proc.pid) == []
    assert in_session(proc.pid, live_only=False) == []  # no orphaned peer outlived it
