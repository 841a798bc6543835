"""Round trips to a remote peer, measured by the bench runner's own steps.

A local case and a remote case differ only in where the server end runs, so a remote case
goes through the very code that measures local ones (:mod:`daemonkit.bench.runner`: warm-up,
timed batches of :func:`~daemonkit.bench.peer.payload_roundtrips`, echo lengths and CRC-32
checked per batch, statistics after the loops). Two small stand-ins make that possible:

* :class:`RemoteChannel`: a :class:`Channel` whose server end lives in ``daemonkit serve``;
  ``open("client")`` connects to it, and nothing is created in this host's kernel beforehand.
* :class:`RemotePeer`: the runner's :class:`Peer` seen from afar. There is no control pipe:
  the server echoes whatever arrives. ``command`` and ``report`` read the server process's
  context-switch counts (one small request each, outside the timed loop), so the table's
  ``c/p`` columns hold both ends as for a local peer (the server's figure covers all its
  threads, libzmq's I/O thread included, and the two requests per batch). ``watch`` bounds a
  batch in time with SIGALRM, as for a local peer.

Results carry ``peer: "remote"``; the JSON, CSV, table and ``--compare`` are the local ones.

*Kernel path*: the client ends' (see :mod:`daemonkit.remote.client`), plus setitimer(2).
*Lifetime*: one connection per case, closed when the case ends.
*See also*: :mod:`daemonkit.bench.runner`, setitimer(2).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, ClassVar

import zmq

from daemonkit.bench import runner
from daemonkit.bench.machine import CpuMode, Placement
from daemonkit.bench.peer import Peer
from daemonkit.bench.results import Result
from daemonkit.channels.base import Channel, End, Role
from daemonkit.errors import ChannelError, DaemonkitError, UsageError
from daemonkit.remote._wire import REMOTE_CHANNELS, Address
from daemonkit.remote.client import RemoteServer

__all__ = ["RemoteCase", "RemoteChannel", "RemotePeer", "RemoteRunner"]

PEER = "remote"  # the `peer` of every remote result


class RemoteChannel(Channel):
    """``zmq-tcp`` or ``tcp`` to a server on another host (or in another network namespace)."""

    name: ClassVar[str] = "remote"
    summary: ClassVar[str] = "a channel whose server end is a daemonkit serve elsewhere"
    payload: ClassVar[bool] = True

    def __init__(self, server: RemoteServer, channel: str) -> None:
        super().__init__("process", int(server.settings["max_size"]))
        self.server = server
        self.channel = channel

    def open(self, role: Role) -> End:
        if role != "client":
            raise ChannelError(self.channel, "the server end runs in daemonkit serve")
        return self.server.open(self.channel)

    def _remove(self) -> None:
        pass  # nothing was created in this host's kernel


class RemotePeer(Peer):
    """The server process, as the runner's batch loop asks about it (see the docstring)."""

    def __init__(self, channel: RemoteChannel) -> None:  # no fork, no thread, no pipes
        self.channel = channel
        self._name = channel.channel
        self.server = channel.server
        self._before: dict[str, int] = {}

    def command(self, n: int) -> None:
        self._before = self._switches()

    def report(self) -> dict[str, Any]:
        if not self._before:  # the runner's first call: the "ready" report
            return {"ready": True, "cpu": []}  # the server's CPU placement is not known here
        after = self._switches()
        return {k: after[k] - self._before[k] for k in after}

    def _switches(self) -> dict[str, int]:
        return dict(self.server.info()["ctx_switches"])

    @contextlib.contextmanager
    def watch(self, timeout: float) -> Iterator[None]:
        def on_alarm(signum: int, frame: FrameType | None) -> None:
            raise ChannelError(self._name, f"no reply within {timeout:g} s")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def stop(self, timeout: float = 2.0) -> None:
        pass  # the server outlives the case


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
        """Measure every case in order, the client pinned as *place* says; then disconnect."""

        def step_of(i: int) -> runner.Progress:
            return lambda what, frac: progress(i, what, frac) if progress else None

        original = os.sched_getaffinity(0)
        try:
            if place.client_cpu is not None:
                os.sched_setaffinity(0, {place.client_cpu})  # the server's CPUs are its own
            return [
                c if isinstance(c, Result) else self._run_case(c, settings, place, step_of(i))
                for i, c in enumerate(cases)
            ]
        finally:
            os.sched_setaffinity(0, original)
            self.server.close()

    def _run_case(
        self, case: RemoteCase, settings: runner.Settings, place: Placement, step: runner.Progress
    ) -> Result:
        base = Result(case.channel, PEER, place.mode, case.size, True)
        channel = RemoteChannel(self.server, case.channel)
        try:
            with contextlib.ExitStack() as stack:
                return runner._measure(base, channel, RemotePeer(channel), stack, settings, step)
        except (DaemonkitError, OSError, zmq.ZMQError) as exc:
            return replace(base, error=str(exc))
