"""``daemonkit inspect`` against real processes: the demo daemon, a terminal's job, python-daemon.

Each test starts the process it inspects the way a user would (``daemonkit start``, a shell on a
pseudo-terminal, a python-daemon script with a careless parent) and checks which of daemon(7)'s
steps the audit says hold, and that the details name what the kernel shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    BACKENDS,
    CLI,
    Daemons,
    daemons_fixture,
    dk,
    gone,
    wait_until,
)
from facilities import require

STEPS = [
    "descriptors", "signal dispositions", "signal mask", "environment", "session",
    "controlling terminal", "not a session leader", "parent", "standard streams", "umask",
    "working directory", "pidfile", "credentials", "systemd unit",
]  # fmt: skip


def inspect_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    res = dk("inspect", *args, "--json")
    assert res.stderr == "", res.stderr
    return res.returncode, json.loads(res.stdout)


def by_status(doc: dict[str, Any], status: str) -> dict[str, str]:
    return {f["name"]: f["detail"] for f in doc["findings"] if f["status"] == status}


def _careless_parent() -> None:
    """Runs in the starter before exec: what `nohup` and a sloppy supervisor hand down."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_daemon_passes_every_step(daemons: Daemons, backend: str) -> None:
    """Started by a careless parent, the demo daemon still shows every step done: exit 0."""
    env = {**os.environ, "DK_API_TOKEN": "leak", "SHLVL": "2"}
    res = daemons.start(
        "--backend", backend, "--log-file", daemons.base / "daemon.log",
        env=env, preexec_fn=_careless_parent,
    )  # fmt: skip
    pid = daemons.pid()
    code, doc = inspect_json("--pidfile", daemons.pidfile)
    assert [f["name"] for f in doc["findings"]] == STEPS
    assert code == 0, by_status(doc, "fails")
    assert doc["pid"] == pid and set(by_status(doc, "holds")) == set(STEPS)
    held = by_status(doc, "holds")
    assert "DK_API_TOKEN" not in held["environment"] and "SHLVL" not in held["environment"]
    assert held["standard streams"] == (
        f"0 -> /dev/null, 1 -> {daemons.base}/daemon.log, 2 -> {daemons.base}/daemon.log"
    )
    assert held["pidfile"] == f"{daemons.pidfile}: its pid, locked by it"
    assert "whose leader has exited" in held["session"]
    # The text form lists every step, each with its reason.
    text = dk("inspect", str(pid))
    assert text.returncode == 0, text.stdout
    for name in STEPS:
        assert f"  {name} " in text.stdout
    assert text.stdout.count("why: ") == len(STEPS)
    assert text.stdout.rstrip().endswith(f"all {len(STEPS)} hold")
    assert "started (pid" in res.stdout
    assert dk("stop", *daemons.loc()).returncode == 0


def _read_until(fd: int, marker: bytes, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data or not data.split(marker, 1)[1].count(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"no {marker!r}: {data!r}"
        data += os.read(fd, 4096)
    return data.split(marker, 1)[1].split(b"\n", 1)[0].strip()


def test_sleep_from_a_terminal_fails_session_terminal_parent() -> None:
    """A job a shell started on a pseudo-terminal: its session, its terminal and its parent are
    the shell's, which is exactly what daemon(7)'s steps 5-8 undo."""
    shell, master = pty.fork()  # the child leads a new session with the pty as its terminal
    if shell == 0:
        try:
            os.execv("/bin/sh", ["sh", "-c", "sleep 300 & echo SLEEP=$!; wait"])
        finally:
            os._exit(127)
    sleep = None
    try:
        sleep = int(_read_until(master, b"SLEEP="))
        code, doc = inspect_json(str(sleep))
        failed = by_status(doc, "fails")
        assert code == 1
        assert {"session", "controlling terminal", "parent"} <= set(failed), failed
        assert f"led by pid {shell} (sh -c" in failed["session"]
        assert failed["controlling terminal"].startswith("pts/")
        assert failed["parent"].startswith(f"pid {shell} (sh -c")
        assert "not a session leader" in by_status(doc, "holds")  # the shell leads, not sleep
        text = dk("inspect", str(sleep))
        assert text.returncode == 1
        assert "do not hold:" in text.stdout and "controlling terminal" in text.stdout
    finally:
        for pid in (sleep, shell):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        os.close(master)
        os.waitpid(shell, 0)


PYDAEMON_SCRIPT = """\
import os, sys, time
import daemon

with daemon.DaemonContext():  # every default: no pidfile, no signal or environment reset
    with open(sys.argv[1], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(300)
"""


def test_plain_python_daemon_shows_the_steps_it_skips(tmp_path: Path) -> None:
    """DaemonContext with its defaults detaches properly but keeps what its parent handed down
    (an ignored SIGHUP, a blocked signal, the whole environment) and takes no pidfile."""
    script = tmp_path / "plain.py"
    script.write_text(PYDAEMON_SCRIPT)
    report = tmp_path / "pid"
    env = {**os.environ, "DK_API_TOKEN": "leak"}
    launcher = subprocess.run(
        [sys.executable, str(script), str(report)], env=env, preexec_fn=_careless_parent,
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    assert launcher.returncode == 0
    wait_until(lambda: report.exists() and report.read_text(), what="python-daemon's pid")
    pid = int(report.read_text())
    try:
        code, doc = inspect_json(str(pid))
        failed = by_status(doc, "fails")
        assert code == 1
        assert set(failed) == {"signal dispositions", "signal mask", "environment", "pidfile"}
        assert failed["signal dispositions"] == "ignored: SIGHUP"
        assert failed["signal mask"] == "blocked: SIGUSR2"
        assert "DK_API_TOKEN (secret?)" in failed["environment"]
        assert failed["pidfile"] == "no locked pidfile found (no lock)"
        held = by_status(doc, "holds")
        assert held["umask"].startswith("0000")  # python-daemon's default, as daemon(7) says
        assert held["standard streams"] == "0 -> /dev/null, 1 -> /dev/null, 2 -> /dev/null"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: gone(pid), what="the python-daemon script to die")


def test_dead_pid_is_exit_3_one_line() -> None:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid names no process now
    res = dk("inspect", str(child.pid))
    assert (res.returncode, res.stdout) == (3, "")
    assert res.stderr == f"daemonkit: no such process: {child.pid}\n"


def test_missing_pidfile_is_exit_3(tmp_path: Path) -> None:
    res = dk("inspect", "--pidfile", tmp_path / "none.pid")
    assert res.returncode == 3 and res.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [[], ["1", "--unit", "x.service"]])
def test_exactly_one_target_is_a_usage_error(args: list[str]) -> None:
    res = dk("inspect", *args)
    assert res.returncode == 2 and res.stderr.startswith("daemonkit: ")
    assert res.stderr.count("\n") == 1


def test_another_users_daemon_says_what_it_cannot_read(daemons: Daemons) -> None:
    """Not root: the descriptors, environment and working directory of root's daemon are
    closed to us; the audit names them and exits 4 rather than guessing."""
    if os.geteuid() != 0:
        require("second-user", "root starts the daemon that nobody then inspects")
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import sys; assert sys.version_info >= (3, 11)"],
                      check=False).returncode:  # fmt: skip
        require("second-user", f"{python} (readable by nobody) is missing or older than 3.11")
    daemons.start()
    pid = daemons.pid()
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [python, "-m", "daemonkit", "inspect", str(pid), "--json"],
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, user=65534, group=65534,
        extra_groups=[], cwd="/", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if res.returncode not in (1, 4) and "No module named" in res.stderr:
        require("second-user", f"the project is not importable by nobody: {res.stderr.strip()}")
    doc = json.loads(res.stdout)
    unknown = by_status(doc, "unknown")
    assert {"descriptors", "environment", "standard streams", "working directory"} <= set(
        unknown
    ), doc
    assert all("Permission denied" in d and "root can" in d for d in unknown.values())
    assert res.returncode == 4, doc  # nothing it could read fails
    text = subprocess.run(
        [python, "-m", "daemonkit", "inspect", str(pid)],
        env={"PYTHONPATH": str(root)}, user=65534, group=65534, extra_groups=[], cwd="/",
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "could not read" in text.stdout and "Permission denied" in text.stdout
    assert dk("stop", *daemons.loc()).returncode == 0


def test_inspect_is_listed_in_help() -> None:
    res = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert "inspect" in res.stdout


def test_root_reads_another_users_process() -> None:
    """As root, nothing of another user's process is closed: every step is judged."""
    if os.geteuid() != 0:
        require("root", "reading another user's descriptors and environment needs root")
    proc = subprocess.Popen(
        ["sleep", "300"], user=65534, group=65534, extra_groups=[], start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        code, doc = inspect_json(str(proc.pid))
        assert by_status(doc, "unknown") == {} and doc["unreadable"] == {}
        assert by_status(doc, "holds")["credentials"].startswith("uid 65534/65534/65534")
        assert code == 1  # its parent is this test, which started it
        assert by_status(doc, "fails")["parent"].startswith(f"pid {os.getpid()} (")
    finally:
        proc.kill()
        proc.wait()


def test_kernel_thread_is_a_usage_error() -> None:
    """A kernel thread has no user space (no environment, descriptors or session of its own)."""
    from daemonkit.procinfo import read_process

    kthreads = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(ProcessLookupError):
                view = read_process(int(entry))
                if view.kernel_thread:
                    kthreads.append(view)
                    break
    if not kthreads:
        pytest.skip("no kernel thread visible in this pid namespace")
    res = dk("inspect", str(kthreads[0].pid))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == (
        f"daemonkit: pid {kthreads[0].pid} ({kthreads[0].comm}) is a kernel thread:"
        " daemon(7) is about processes\n"
    )
