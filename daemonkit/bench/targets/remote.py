"""``daemonkit bench --connect``: the other end is a ``daemonkit serve``, maybe on another host.

A local case and a remote case differ only in where the server end runs, so a remote case
goes through the very code that measures local ones (:func:`daemonkit.bench.runner.run_case`
and :func:`daemonkit.bench.measure.measure`: warm-up, timed batches of
:func:`~daemonkit.bench.peer.payload_roundtrips`, echo lengths and CRC-32 checked per batch,
statistics after the loops). The client ends are :mod:`daemonkit.remote.client`'s. What the
runner asks of the other end between batches (its :class:`~daemonkit.bench.measure.Link`)
is, for a remote server:

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
*Lifetime*: one connection per case, closed when the case ends; the control connection to
the server from :meth:`RemoteTarget.plan` to :meth:`RemoteTarget.close`.
*See also*: :mod:`daemonkit.bench.runner`, socket(7) (SO_RCVTIMEO), zmq_setsockopt(3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from daemonkit.bench.measure import EchoServerLink
from daemonkit.bench.peer import CtxSwitches
from daemonkit.bench.results import Result
from daemonkit.bench.runner import Case
from daemonkit.channels.base import End
from daemonkit.errors import UsageError
from daemonkit.machine import CpuMode, Placement
from daemonkit.remote.client import RemoteServer
from daemonkit.remote.wire import REMOTE_CHANNELS, Address

__all__ = ["PEER", "RemoteLink", "RemoteTarget"]

PEER = "remote"  # the `peer` of every remote result


class RemoteLink(EchoServerLink):
    """The runner's :class:`~daemonkit.bench.measure.Link` to a ``daemonkit serve``."""

    def __init__(self, server: RemoteServer, channel: str) -> None:
        super().__init__(channel, self._server_switches)
        self.server = server

    def _server_switches(self) -> CtxSwitches:
        counts = self.server.info()["ctx_switches"]
        return CtxSwitches(int(counts["voluntary"]), int(counts["involuntary"]))

    def guard(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        # No deadline of our own: every blocking call of a remote end, and the counters'
        # requests, give up after the client's timeout (ZMQ_RCVTIMEO, SO_RCVTIMEO).
        return contextlib.nullcontext()


class RemoteTarget:
    """The cases against one server, reached at *address* by :meth:`plan`."""

    _server: RemoteServer | None = None  # class default: close() is safe before plan()

    def __init__(self, address: Address) -> None:
        self.address = address
        self.info: dict[str, Any] = {}  # the server's settings, once plan() has reached it

    def plan(
        self, channels: Sequence[str], sizes: Sequence[int], cpu: CpuMode
    ) -> list[Case | Result]:
        """Reach the server; the cases, with sizes above its limit as skipped results."""
        other = [c for c in channels if c not in REMOTE_CHANNELS]
        if other:  # checked before connecting: a usage error needs no server
            raise UsageError(
                f"--connect measures {' and '.join(REMOTE_CHANNELS)} only, not {', '.join(other)}"
            )
        self._server = RemoteServer(self.address)
        self.info = self._server.settings
        limit = int(self.info["max_size"])
        out: list[Case | Result] = []
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
                    out.append(Case(name, PEER, size, True))
        return out

    def metadata(self) -> dict[str, Any]:
        return {"remote_peer": self.info.get("machine")}

    def prepare(self, case: Case, place: Placement, stack: contextlib.ExitStack) -> _RemoteEnd:
        assert self._server is not None, "plan() reaches the server first"
        return _RemoteEnd(self._server, case.channel)  # nothing to make: the server echoes

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


class _RemoteEnd:
    """A case's connection to the server, opened by :meth:`open_client`."""

    def __init__(self, server: RemoteServer, channel: str) -> None:
        self.server = server
        self.channel = channel
        self.link = RemoteLink(server, channel)

    def open_client(self, stack: contextlib.ExitStack) -> tuple[End, list[int] | None]:
        # May wait up to the client's timeout for a connection: interrupts are not held here.
        return stack.enter_context(self.server.open(self.channel)), None  # CPUs not known

    def explain(self, message: str) -> str:
        return message
