"""Real documents of every kind daemonkit writes, made by short runs of the tool itself.

Used by the tests that read documents back (schemas and mutations, the report in a browser):
bench with local peers, bench against the running demo daemon, bench and throughput against a
``daemonkit serve`` on loopback, lessons, and (on request) a stream-mode bench run and a
traced run. Each run is as short as still gives every part of its document.

No tests here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_remote import start_serve, stop_serve

__all__ = ["QUICK", "run", "write_documents", "write_stream", "write_trace"]

DK = [sys.executable, "-m", "daemonkit"]
QUICK = ("--iterations", "200", "--warmup", "20")


def run(*args: str | Path) -> None:
    """``daemonkit ARGS``; it must succeed."""
    r = subprocess.run([*DK, *map(str, args)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr


def write_documents(
    base: Path, lessons: tuple[str, ...] = ("address-space", "semaphore-vs-signal")
) -> None:
    """``bench.json``, ``daemon.json``, ``connect.json``, ``throughput.json`` and
    ``lessons.json`` (the *lessons* named) in *base*, a short directory (AF_UNIX paths)."""
    rdir = base / "run"
    run("bench", "--channels", "pipe,signal", *QUICK, "--json", base / "bench.json")
    run("start", "--runtime-dir", rdir)
    try:
        run("bench", "--target", "daemon", "--channels", "unix-stream,signal", *QUICK,
            "--runtime-dir", rdir, "--json", base / "daemon.json")  # fmt: skip
    finally:
        run("stop", "--runtime-dir", rdir)
    served = start_serve()
    try:
        url = served.zmq_url
        run("bench", "--connect", url, "--channels", "tcp", *QUICK,
            "--json", base / "connect.json")  # fmt: skip
        run("throughput", "--connect", url, "--sizes", "64,4K", "--count", "200",
            "--json", base / "throughput.json")  # fmt: skip
    finally:
        stop_serve(served)
    run("lessons", *lessons, "--quick", "--json", base / "lessons.json")


def write_stream(path: Path) -> None:
    """A ``bench --mode stream`` run: messages per second, one batch rate per batch."""
    run("bench", "--mode", "stream", "--channels", "pipe,unix-stream", "--sizes", "64,4K",
        "--iterations", "2000", "--warmup", "100", "--json", path)  # fmt: skip


def write_trace(path: Path) -> None:
    """A ``daemonkit trace`` run (needs perf and the scheduler's tracepoints)."""
    run("trace", "--channels", "pipe", "--peer", "thread", "--round-trips", "100",
        "--json", path)  # fmt: skip
