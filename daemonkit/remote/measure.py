"""Round trips to a remote peer, measured by the bench runner's own steps.

A local case and a remote case differ only in where the server end runs, so a remote case
goes through the very code that measures local ones (:func:`daemonkit.bench.runner.measure`:
warm-up, timed batches of :func:`~daemonkit.bench.peer.payload_roundtrips`, echo lengths and
CRC-32 checked per batch, statistics after the loops). What the runner asks of the other end
between batches (its :class:`~daemonkit.bench.runner.Link`) is, for a remote server:

* ``start``/``finish``: there is no control pipe (the server echoes whatever arrives), so
  they read the server process's context-switch counts before and after the batch (one small
  request each, outside the timed loop). The table's ``c/p`` columns thus hold both ends, as
  for a local peer; the server's figure covers all its threads, libzmq's I/O thread included,
  and the two requests per batch.
* ``guard``: nothing to arm. A local peer's batch needs a SIGALRM deadline because a pipe or
  semaphore wait has none; here every blocking call (each reply, each counters request)
  gives up on its own after the client's timeout (:mod:`daemonkit.remote.client`).

Results carry ``peer: "remote"``; the JSON, CSV, table and ``--compare`` are the local ones.

*Kernel path*: the client ends' (see :mod:`daemonkit.remote.client`).
*Lifetime*: one connection per case, closed when the case ends.
*See also*: :mod:`daemonkit.bench.runner`, socket(7) (SO_RCVTIMEO), zmq_setsockopt(3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import zmq

from daemonkit.bench import runner
from daemonkit.bench.peer import CtxSwitches
from daemonkit.bench.results import Result
from daemonkit.errors import DaemonkitError, UsageError
from daemonkit.machine import CpuMode, Placement
from daemonkit.remote._wire import REMOTE_CHANNELS, Address
from daemonkit.remote.client import RemoteServer

__all__ = ["RemoteCase", "RemoteLink", "RemoteRunner"]

PEER = "remote"  # the `peer` of every remote result


class RemoteLink:
    """The runner's :class:`~daemonkit.bench.runner.Link` to a ``daemonkit serve``."""

    def __init__(self, server: RemoteServer, channel: str) -> None:
        self.server = server
        self.channel = channel
        self._before = CtxSwitches(0, 0)

    def _switches(self) -> CtxSwitches:
        counts = self.server.info()["ctx_switches"]
        return CtxSwitches(int(counts["voluntary"]), int(counts["involuntary"]))

    def start(self, n: int) -> None:
        self._before = self._switches()

    def finish(self) -> CtxSwitches:
        return self._switches() - self._before

    def guard(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        # No deadline of our own: every blocking call of a remote end, and the counters'
        # requests, give up after the client's timeout (ZMQ_RCVTIMEO, SO_RCVTIMEO).
        return contextlib.nullcontext()


@dataclass(frozen=True)
class RemoteCase:
    channel: str
    size: int


class RemoteRunner:
    """``plan`` and ``run`` as in :mod:`daemonkit.bench.runner`, against one server."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self.info: dict[str, Any] = {}  # the server's settings, once plan() has reached it

    def plan(self, channels: Sequence[str], sizes: Sequence[int], cpu: CpuMode) -> list[Any]:
        """Reach the server; the cases, with sizes above its limit as skipped results."""
        other = [c for c in channels if c not in REMOTE_CHANNELS]
        if other:  # checked before connecting: a usage error needs no server
            raise UsageError(
                f"--connect measures {' and '.join(REMOTE_CHANNELS)} only, not {', '.join(other)}"
            )
        self.server = RemoteServer(self.address)
        self.info = self.server.settings
        limit = int(self.info["max_size"])
        out: list[RemoteCase | Result] = []
        for name in channels:
            for size in sizes:
                if size > limit:
                    why = (
                        f"{size} bytes exceed the server's limit ({limit} bytes, serve --max-size)"
                    )
                    out.append(Result(name, PEER, cpu, size, True, skipped=why))
                elif name == "tcp" and self.info.get("tcp_port") is None:
                    why = "the server has no plain TCP endpoint"
                    out.append(Result(name, PEER, cpu, size, True, skipped=why))
                else:
                    out.append(RemoteCase(name, size))
        return out

    def run(
        self,
        cases: Sequence[RemoteCase | Result],
        settings: runner.Settings,
        place: Placement,
        progress: Callable[[int, str, float], None] | None = None,
    ) -> list[Result]:
        """Measure every case in order with the runner's loop (pinning, Ctrl-C); disconnect."""
        try:
            return runner.run(cases, settings, place, progress, self._run_case)
        finally:
            self.server.close()

    def _run_case(
        self, case: RemoteCase, settings: runner.Settings, place: Placement, step: runner.Progress
    ) -> Result:
        base = Result(case.channel, PEER, place.mode, case.size, True)
        link = RemoteLink(self.server, case.channel)
        try:
            with self.server.open(case.channel) as end:  # the server's CPUs are not known here
                return runner.measure(base, end, link, settings, step, None)
        except (DaemonkitError, OSError, zmq.ZMQError) as exc:
            return replace(base, error=str(exc))
