"""How long the demo daemon takes to start: fork to pid, pidfile, ready and first accept.

Each cycle runs ``daemonkit start --json`` as a fresh process in a private runtime directory,
connects to the control socket as soon as ``start`` returns, and stops the daemon again. The
stages are timed on ``CLOCK_MONOTONIC``, one clock for the whole machine, by the process where
each happens: the starter reads it just before its first fork, the daemon when it exists (after
fork, setsid, fork), when its pidfile is locked and when it reports ready, and its main loop when
it accepts its first connection. So nothing here depends on a pipe's or a poll's wake-up, except
the last stage, which by definition includes the starter exiting and a client connecting.

The runner is apart from the statistics (pyperf's rule): :func:`run_cycles` only collects raw
samples; :func:`summarize` computes the median and range afterwards.

Kernel path: fork(2), setsid(2), execve(2) (the environment step re-executes the starter),
fcntl(2) ``F_SETLK`` on the pidfile, pipe(2) readiness messages, connect(2)/accept(2) on the
control socket. Lifetime: every daemon is stopped (``daemonkit stop``) before the next cycle
and the runtime directory is removed at the end, on every path.
See also: daemon(7), clock_gettime(2) ``CLOCK_MONOTONIC``, :mod:`daemonkit.daemon.readiness`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemonkit.errors import DaemonStartError
from daemonkit.service.client import request

__all__ = ["STAGES", "run_cycles", "summarize"]

STAGES = ("fork_to_pid_s", "fork_to_pidfile_s", "fork_to_ready_s", "fork_to_accept_s")
_CLI = [sys.executable, "-m", "daemonkit"]


def run_cycles(
    backend: str, cycles: int, tick: Callable[[], None] = lambda: None
) -> list[dict[str, float]]:
    """Start and stop the daemon *cycles* times with *backend*; one dict of stages per start."""
    base = Path(tempfile.mkdtemp(prefix="dk-startup.", dir="/tmp"))  # short: sun_path limit
    rdir = base / "run"
    samples = []
    try:
        for _ in range(cycles):
            samples.append(_one_cycle(backend, rdir))
            tick()
    finally:
        _stop(rdir)  # interrupted between start and stop: the daemon must not outlive us
        shutil.rmtree(base, ignore_errors=True)
    return samples


def _one_cycle(backend: str, rdir: Path) -> dict[str, float]:
    started = subprocess.run(
        [*_CLI, "start", "--runtime-dir", str(rdir), "--backend", backend, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if started.returncode != 0:
        raise DaemonStartError(f"start ({backend}): {started.stderr.strip()}")
    report: dict[str, Any] = json.loads(started.stdout)
    try:
        status = request(rdir, {"cmd": "status"})  # the daemon's first accept
    finally:
        _stop(rdir)
    sample = {k: float(report[k]) for k in STAGES[:3]}
    sample["fork_to_accept_s"] = round(status["first_accept_monotonic"] - report["forked_at"], 6)
    return sample


def _stop(rdir: Path) -> None:
    if rdir.exists():
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [*_CLI, "stop", "--runtime-dir", str(rdir)], capture_output=True, timeout=30
            )


def summarize(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per stage: median, minimum and maximum over the cycles, in seconds."""
    out = {}
    for stage in STAGES:
        values = [s[stage] for s in samples]
        out[stage] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return out
