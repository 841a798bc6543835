"""References beside the channels: C tools and bare Python loops, pinned like the channels.

The table says what Python and the harness add on top of the kernel only if the kernel's own
cost is measured in the same run, on the same CPUs. Two kinds of reference:

* **C tools**, run as installed, never vendored: ``perf bench sched pipe`` (a pipe ping-pong
  between two processes) and lmbench's ``lat_pipe``, ``lat_unix``, ``lat_tcp`` and
  ``lat_sem``, found on ``PATH`` or where Debian installs them (``/usr/lib/lmbench/bin``). They
  report a mean per operation, not a median. A tool that is missing is listed as skipped with
  the package that provides it.
* **Bare Python loops**, written here in the fewest lines that do the job, so that a channel's
  figure can be held against the same mechanism with nothing around it: a pipe ping-pong of
  plain ``os.write``/``os.readv`` calls, and a busy-poll ping-pong on two sequence words in a
  shared mapping (what ``shm-spin`` does, without its harness). Each reports a median.

Facts about pinning:

* The Python loops pin their two processes as ``--cpu`` asks (client CPU, peer CPU), as the
  channels' peers do. A C tool is started with this thread pinned to the CPUs of both ends, and
  inherits that mask: with ``--cpu same`` both of its processes share the CPU; with ``split``
  the kernel places its two processes on the two CPUs (the tools cannot pin each side).

*Kernel path*: fork(2), pipe(2), write(2)/readv(2) and mmap(2) in the Python loops;
fork + execve(2) for the C tools. *Lifetime*: every process and object lives for one
reference; a forked loop peer dies with the runner (``PR_SET_PDEATHSIG``).
*See also*: perf-bench(1), lmbench(8), lat_pipe(8), sched_setaffinity(2).
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import statistics
import subprocess
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from daemonkit.bench.peer import die_with_parent
from daemonkit.machine import Placement

__all__ = [
    "Reference",
    "busy_poll_loop",
    "c_references",
    "find_tool",
    "pipe_loop",
    "python_references",
]

_TIMEOUT = 120.0  # s for one C tool
_LMBENCH_DIRS = sorted(Path("/usr/lib/lmbench/bin").glob("*"))  # Debian: one dir per triplet


@dataclass(frozen=True)
class Reference:
    """One reference figure, or why there is none."""

    name: str  # "perf bench sched pipe", "lat_pipe", "python pipe loop", ...
    what: str  # what one operation is
    channel: str  # the daemonkit channel it is held against
    size: int  # message bytes (0: a token); the C tools' own tiny messages count as 0
    p50_ns: float | None = None  # the bare Python loops
    mean_ns: float | None = None  # the C tools report a mean per operation
    command: list[str] | None = None
    skipped: str | None = None


# -- the bare Python loops --------------------------------------------------------------------


@contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _forked(peer: Callable[[], None], cpu: int | None) -> int:
    """Fork a loop peer pinned to *cpu* that dies with this process; its pid."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent(parent)
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            peer()
        finally:
            os._exit(0)
    return pid


def pipe_loop(size: int, n: int, place: Placement, warmup: int = 500) -> float:
    """p50 ns of a ping-pong of plain ``os.write``/``os.readv`` over two pipes (no framing;
    a 0-byte message is a 1-byte token, else the reader would never wake up)."""
    wire = max(size, 1)
    to_peer, to_client = os.pipe2(os.O_CLOEXEC), os.pipe2(os.O_CLOEXEC)

    def echo() -> None:
        os.close(to_peer[1])
        os.close(to_client[0])
        rfd, wfd, buf = to_peer[0], to_client[1], memoryview(bytearray(wire))
        readv, write = os.readv, os.write
        while True:
            got = 0
            while got < wire:  # a message larger than the pipe arrives in pieces
                k = readv(rfd, (buf[got:],))
                if not k:
                    return  # the client closed its end
                got += k
            write(wfd, buf)

    pid = _forked(echo, place.peer_cpu)
    os.close(to_peer[0])
    os.close(to_client[1])
    rfd, wfd = to_client[0], to_peer[1]
    samples = array("q", bytes(8 * (warmup + n)))
    clock, readv, write = time.perf_counter_ns, os.readv, os.write
    msg, rbuf = memoryview(bytearray(wire)), memoryview(bytearray(wire))
    into = (rbuf,)
    try:
        with _pinned(place.client_cpu):
            for i in range(warmup + n):
                t0 = clock()
                write(wfd, msg)
                if (got := readv(rfd, into)) != wire:
                    while got < wire:
                        got += readv(rfd, (rbuf[got:],))
                samples[i] = clock() - t0
    finally:
        os.close(wfd)  # the echo sees end of file and leaves
        os.close(rfd)
        os.waitpid(pid, 0)
    return statistics.median(samples[warmup:])


def busy_poll_loop(size: int, n: int, place: Placement, warmup: int = 500) -> float:
    """p50 ns of a ping-pong on two sequence words in a shared anonymous mapping, *size*
    bytes copied in and out each way; both sides poll, yielding the CPU when they may share
    one (as ``shm-spin`` does). x86-64 only (total store order, see shm_spin)."""
    pages = mmap.mmap(-1, 128 + max(size, 1))  # MAP_SHARED | MAP_ANONYMOUS: kept across fork
    shared = memoryview(pages)
    to_server, to_client = shared[0:8].cast("Q"), shared[64:72].cast("Q")
    data = shared[128 : 128 + size]
    spread = place.client_cpu is not None and place.client_cpu != place.peer_cpu
    total = warmup + n

    def echo() -> None:
        buf = bytearray(size)
        for i in range(1, total + 1):
            while to_server[0] != i:
                if not spread:
                    os.sched_yield()
            buf[:] = data
            data[:] = buf
            to_client[0] = i

    pid = _forked(echo, place.peer_cpu)
    samples = array("q", bytes(8 * total))
    clock, msg, rbuf = time.perf_counter_ns, bytes(size), bytearray(size)
    yield_ = os.sched_yield
    try:
        with _pinned(place.client_cpu):
            for i in range(1, total + 1):
                t0 = clock()
                data[:] = msg
                to_server[0] = i
                if spread:
                    while to_client[0] != i:
                        pass
                else:
                    while to_client[0] != i:
                        yield_()
                rbuf[:] = data
                samples[i - 1] = clock() - t0
    finally:
        os.waitpid(pid, 0)
        for v in (to_server, to_client, data, shared):
            v.release()
        pages.close()
    return statistics.median(samples[warmup:])


def python_references(
    channels: list[str], sizes: list[int], n: int, place: Placement
) -> list[Reference]:
    """The bare Python loops for the channels measured: ``pipe`` and ``shm-spin``."""
    out = []
    if "pipe" in channels:
        what = "round trip, os.write + os.readv"
        out += [
            Reference("python pipe loop", what, "pipe", s, p50_ns=pipe_loop(s, n, place))
            for s in sizes
        ]
    if "shm-spin" in channels:
        what = "round trip, polling a shared word"
        out += [
            Reference(
                "python busy-poll loop", what, "shm-spin", s, p50_ns=busy_poll_loop(s, n, place)
            )
            for s in sizes
        ]
    return out


# -- the C tools ------------------------------------------------------------------------------

_PERF_PACKAGE = "linux-perf (Debian), linux-tools-common (Ubuntu)"
_LMBENCH_PACKAGE = "lmbench (Debian non-free, Ubuntu multiverse)"


@dataclass(frozen=True)
class _Tool:
    name: str
    what: str
    channel: str
    args: list[str]
    package: str


def _tools(n: int) -> list[_Tool]:
    lm = _LMBENCH_PACKAGE
    return [
        _Tool("perf", "pipe round trip (perf bench sched pipe)", "pipe",
              ["bench", "sched", "pipe", "-l", str(n)], _PERF_PACKAGE),
        _Tool("lat_pipe", "pipe round trip", "pipe", [], lm),
        _Tool("lat_unix", "AF_UNIX stream round trip", "unix-stream", [], lm),
        _Tool("lat_sem", "semaphore latency, as lat_sem reports it", "sysv-sem", [], lm),
        _Tool("lat_tcp", "TCP round trip over loopback", "tcp", ["127.0.0.1"], lm),
    ]  # fmt: skip


def find_tool(tool: str) -> str | None:
    """The path of C tool *tool*: on ``PATH``, or where Debian installs lmbench; None if absent."""
    found = shutil.which(tool)
    if found:
        return found
    for d in _LMBENCH_DIRS:
        if (d / tool).is_file() and os.access(d / tool, os.X_OK):
            return str(d / tool)
    return None


def _run(cmd: list[str], cpus: set[int], quiet: bool = False) -> str:
    """Run *cmd* with this thread's CPU mask set to *cpus* (the child inherits it); its
    stdout and stderr together (*quiet*: both to /dev/null, nothing returned)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    where = subprocess.DEVNULL if quiet else subprocess.PIPE
    try:
        proc = subprocess.run(cmd, stdout=where, stderr=where, text=True, timeout=_TIMEOUT,
                              check=False)  # fmt: skip
    finally:
        os.sched_setaffinity(0, before)
    return (proc.stdout or "") + (proc.stderr or "")


_MICROSECONDS = re.compile(r"([\d.]+)\s+(?:usecs/op|microseconds)")


def _measure_tool(tool: _Tool, cpus: set[int]) -> Reference:
    path = find_tool(tool.name)
    if path is None:
        why = f"not installed: package {tool.package}"
        return Reference(tool.name, tool.what, tool.channel, 0, skipped=why)
    cmd = [path, *tool.args]
    if tool.name == "lat_tcp":
        # Its server first: `lat_tcp -s` forks the server and exits; the server keeps the
        # descriptors it inherits, so it must not inherit our pipes (we would wait on them).
        _run([path, "-s"], cpus, quiet=True)
    try:
        out = _run(cmd, cpus)
    finally:
        if tool.name == "lat_tcp":
            _run([path, "-S", "127.0.0.1"], cpus, quiet=True)  # an empty connection: stop
    m = _MICROSECONDS.search(out)
    if m is None:
        last = out.strip().splitlines()[-1] if out.strip() else "no output"
        why = f"no figure in its output: {last}"
        return Reference(tool.name, tool.what, tool.channel, 0, command=cmd, skipped=why)
    mean = float(m.group(1)) * 1000
    return Reference(tool.name, tool.what, tool.channel, 0, mean_ns=mean, command=cmd)


def c_references(n: int, place: Placement) -> list[Reference]:
    """perf and lmbench, the ones installed, pinned to the CPUs of both ends."""
    both = {c for c in (place.client_cpu, place.peer_cpu) if c is not None}
    cpus = both or os.sched_getaffinity(0)
    return [_measure_tool(tool, cpus) for tool in _tools(n)]
