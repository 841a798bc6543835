"""``daemonkit bench --target daemon``: round trips to the running demo daemon's endpoints.

The other end is no peer of ours: it is the daemon, found as ``daemonkit status`` finds it (the
pidfile's lock holder, then ``control.sock`` in the runtime directory). For each endpoint it
serves (``unix-stream``, ``fifo``, ``zmq-ipc``, ``signal``, ``posix-shm``) the client asks it
over the control socket to open a per-client end (:func:`daemonkit.service.client.open_endpoint`),
then runs the same warm-up, timed batches and echo checks as against a local peer
(:func:`daemonkit.bench.measure.measure`).

Facts about measuring against a daemon:

* The daemon is not told how many messages a batch holds: it echoes whatever comes. A daemon
  that stops answering is caught by a SIGALRM deadline per batch, not waited for.
* Its context switches are read from ``/proc/PID/task/*/status`` (``voluntary_ctxt_switches``,
  ``nonvoluntary_ctxt_switches``) before and after each batch, summed over its threads: other
  clients of the daemon, if any, are counted too.
* The daemon is not pinned by the benchmark; its allowed CPUs are recorded as they are.

*Kernel path*: the endpoint's own (see :mod:`daemonkit.service.endpoints`); ``read`` of
``/proc`` files between batches; ``setitimer(2)`` per batch.
*Lifetime*: the per-client objects are the daemon's, removed when the end closes (or when this
process dies and the kernel closes the control connection).
*See also*: proc(5), setitimer(2), :mod:`daemonkit.service.client`.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from daemonkit.bench.measure import EchoServerLink
from daemonkit.bench.peer import CtxSwitches
from daemonkit.bench.results import Result
from daemonkit.bench.runner import Case
from daemonkit.channels.base import End
from daemonkit.errors import ChannelError
from daemonkit.machine import CpuMode, Placement
from daemonkit.runtime import proc_stat
from daemonkit.service.endpoints import ENDPOINT_NAMES, REGISTRY

__all__ = ["DAEMON_CHANNELS", "DaemonTarget", "find_daemon"]

DAEMON_CHANNELS = ENDPOINT_NAMES
PEER = "daemon"  # the `peer` of every result against the daemon


def find_daemon(
    runtime_dir: Path | None, pidfile: Path | None
) -> tuple[Path, Path, dict[str, Any]]:
    """The daemon's runtime dir, pidfile and status reply, checked (see
    :func:`daemonkit.service.client.daemon_status`); NotRunningError when no live process
    holds the pidfile (see :func:`daemonkit.service.locate.locate_daemon`)."""
    from daemonkit.service.client import daemon_status
    from daemonkit.service.locate import locate_daemon

    found = locate_daemon(runtime_dir, pidfile)
    found.running_pid()
    info = daemon_status(found.runtime_dir, found.pidfile, timeout=2.0)  # pid: the listener's
    return found.runtime_dir, found.pidfile, info


def _task_switches(pid: int) -> CtxSwitches:
    """Context switches of every thread of *pid* so far, as /proc counts them, and the CPU
    time of the whole process (``stat`` fields 14 and 15, in clock ticks, proc(5))."""
    vol = invol = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                invol += int(line.split()[1])
    stat = proc_stat(pid)  # numbered from field 3: utime is [11], stime [12], processor [36]
    tick = os.sysconf("SC_CLK_TCK")
    return CtxSwitches(vol, invol, int(stat[11]) / tick, int(stat[12]) / tick, int(stat[36]))


class _DaemonLink(EchoServerLink):
    """The daemon as the other end: nothing to command, a deadline, its /proc counters."""

    def __init__(self, pid: int, channel: str) -> None:
        super().__init__(channel, lambda: _task_switches(pid))
        self.pid = pid

    @contextlib.contextmanager
    def guard(self, timeout: float) -> Iterator[None]:
        def on_alarm(signum: int, frame: FrameType | None) -> None:
            raise ChannelError(self.channel, f"no reply from the daemon within {timeout:g} s")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


class DaemonTarget:
    """The cases against one running daemon, found as ``daemonkit status`` finds it."""

    def __init__(self, runtime_dir: Path | None, pidfile: Path | None) -> None:
        self.runtime_dir, self.pidfile, self.info = find_daemon(runtime_dir, pidfile)
        self.pid = int(self.info["pid"])
        self.serving = set(self.info.get("endpoints", {})) & set(DAEMON_CHANNELS)

    def plan(
        self, channels: Sequence[str], sizes: Sequence[int], cpu: CpuMode
    ) -> list[Case | Result]:
        out: list[Case | Result] = []
        for name in channels:
            payload = name not in REGISTRY or REGISTRY[name].payload
            if name not in DAEMON_CHANNELS or name not in self.serving:
                why = (
                    "the daemon does not serve this channel"
                    if name in DAEMON_CHANNELS
                    else f"not a daemon endpoint (those are {', '.join(DAEMON_CHANNELS)})"
                )
                out.append(Result(name, PEER, cpu, sizes[0], payload, skipped=why))
                continue
            out.extend(Case(name, PEER, s, payload) for s in (sizes if payload else [0]))
        return out

    def metadata(self) -> dict[str, Any]:
        return {"daemon": {k: self.info.get(k) for k in ("pid", "version", "backend")}}

    def prepare(self, case: Case, place: Placement, stack: contextlib.ExitStack) -> _DaemonEnd:
        from daemonkit.service.client import open_endpoint

        end = stack.enter_context(
            open_endpoint(self.runtime_dir, case.channel, case.size, self.pidfile)
        )
        return _DaemonEnd(self.pid, case.channel, end)

    def close(self) -> None:
        pass  # one control connection per case, closed with its end


class _DaemonEnd:
    """The daemon's per-client endpoint for one case, already open at the daemon."""

    def __init__(self, pid: int, channel: str, end: End) -> None:
        self.end = end
        self.link = _DaemonLink(pid, channel)

    def open_client(self, stack: contextlib.ExitStack) -> tuple[End, list[int] | None]:
        return self.end, sorted(os.sched_getaffinity(self.link.pid))

    def explain(self, message: str) -> str:
        return message
