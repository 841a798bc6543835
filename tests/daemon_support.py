"""Helpers for the daemon and service tests: run the CLI as a real process, read /proc.

No tests here. Every daemon a test starts is registered with :class:`Daemons`, whose fixture
kills whatever is still running at the end, so no daemon outlives its test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daemonkit.cleanup import list_objects, remove_object
from daemonkit.runtime import pid_alive
from daemonkit.runtime import proc_stat as proc_stat  # re-exported for the daemon tests

BACKENDS = ["native", "python-daemon"]
CLI = [sys.executable, "-m", "daemonkit"]


def dk(
    *args: str | Path, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``daemonkit ARGS`` to completion; stdout/stderr captured as text."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=30, env=env, **kw
    )


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def gone(pid: int) -> bool:
    """Exited (or a zombie: this machine's pid 1 does not reap orphans)."""
    return not pid_alive(pid)


def wait_until(cond: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def read_pid(pidfile: Path) -> int:
    return int(pidfile.read_text())


@dataclass
class Daemons:
    """A private runtime dir for one test, and the pids to kill if the test does not stop them."""

    base: Path
    pids: set[int] = field(default_factory=set)

    @property
    def rdir(self) -> Path:
        return self.base / "run"

    @property
    def pidfile(self) -> Path:
        return self.rdir / "daemonkit.pid"

    def loc(self) -> list[str]:
        return ["--runtime-dir", str(self.rdir)]

    def start(
        self, *args: str | Path, check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        res = dk("start", *self.loc(), *args, **kw)
        if check:
            assert res.returncode == 0, res.stderr
        with contextlib.suppress(FileNotFoundError, ValueError):
            self.pids.add(read_pid(self.pidfile))
        return res

    def pid(self) -> int:
        pid = read_pid(self.pidfile)
        self.pids.add(pid)
        return pid

    def kill_all(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)
        for pid in self.pids:
            wait_until(lambda p=pid: gone(p), what=f"pid {pid} to die")
        # What a killed daemon could not remove (shared memory, semaphores) goes here.
        for obj in list_objects([self.rdir]):
            if obj.owner in self.pids:
                remove_object(obj)


@pytest.fixture(name="daemons")
def daemons_fixture() -> Iterator[Daemons]:
    # Short paths: an AF_UNIX socket path must fit in 108 bytes, pytest's tmp_path may not.
    base = Path(tempfile.mkdtemp(prefix="dkt.", dir="/tmp"))
    d = Daemons(base)
    try:
        yield d
    finally:
        d.kill_all()
        shutil.rmtree(base, ignore_errors=True)
