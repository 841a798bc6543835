"""``daemonkit bench``: the other end is a peer of this process, forked or a thread.

For each case the channel's kernel objects are created here, in this process, which owns
them; then the peer starts (:class:`daemonkit.bench.peer.Peer`), pinned as ``--cpu`` asks,
and reports ready over its control pipe with the CPUs it got. Between batches the runner
commands it (how many messages to echo) and reads its context-switch counts over the same
pipes.

Facts about a local peer:

* A peer that dies (SIGKILL) or hangs raises inside the client through :meth:`Peer.watch`
  (a SIGALRM deadline, and SIGCHLD for a forked peer); the error is recorded for that case
  with how the peer died, and the next case runs.
* A channel that runs between threads only (it lives in one address space) is planned for
  ``--peer thread`` alone, one that runs between processes only (``shm-spin``: two pollers in
  one process would take turns on the GIL) for ``--peer process`` alone; a size above the
  channel's limit here is skipped, with the limit.

*Kernel path*: fork(2) or pthread_create(3) per case, sched_setaffinity(2) in the peer,
the channel's own calls; pipe(2) for the peer's control.
*Lifetime*: the kernel objects and the peer live exactly as long as the case.
*See also*: :mod:`daemonkit.bench.peer`, :mod:`daemonkit.channels`, fork(2).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from daemonkit.bench.measure import SETUP_TIMEOUT, Mode
from daemonkit.bench.peer import CtxSwitches, Peer
from daemonkit.bench.results import Result
from daemonkit.bench.runner import Case
from daemonkit.channels import channel_class
from daemonkit.channels.base import Channel, End, PeerKind
from daemonkit.machine import CpuMode, Placement

__all__ = ["LocalTarget"]

_KINDS: dict[str, PeerKind] = {"process": "process", "thread": "thread"}


class LocalTarget:
    """Peers of this process, of the kinds asked for (``--peer``)."""

    def __init__(self, peers: Sequence[PeerKind], mode: Mode = "pingpong") -> None:
        self.peers = list(peers)
        self.mode = mode

    def plan(
        self, channels: Sequence[str], sizes: Sequence[int], cpu: CpuMode
    ) -> list[Case | Result]:
        out: list[Case | Result] = []
        peers = self.peers
        for name in channels:
            try:
                cls = channel_class(name)
            except ImportError as exc:  # a channel module that is missing or broken here
                out.extend(
                    Result(name, p, cpu, sizes[0], None, error=f"cannot load channel: {exc}")
                    for p in peers
                )
                continue
            kinds = [p for p in peers if p in cls.peer_kinds]
            if not kinds:
                only = "threads" if cls.peer_kinds == {"thread"} else "processes"
                why = f"runs between {only} only"
                out.append(Result(name, peers[0], cpu, 0, cls.payload, skipped=why))
            for kind in kinds:
                if not cls.payload and self.mode == "stream":
                    why = "no payload: nothing to stream (a notification carries no bytes)"
                    out.append(Result(name, kind, cpu, 0, False, skipped=why))
                    continue
                if not cls.payload:  # a notification carries no bytes: one case, size 0
                    out.append(Case(name, kind, 0, False))
                    continue
                limit = cls.max_message_size()
                for size in sizes:
                    if limit is not None and size > limit:
                        why = f"{size} bytes exceed this channel's limit here ({limit} bytes)"
                        out.append(Result(name, kind, cpu, size, True, skipped=why))
                    else:
                        out.append(Case(name, kind, size, True))
        return out

    def metadata(self) -> dict[str, Any]:
        return {}  # this machine's facts are the document's own

    def prepare(self, case: Case, place: Placement, stack: contextlib.ExitStack) -> _LocalPeer:
        kind = _KINDS[case.peer]
        channel = stack.enter_context(channel_class(case.channel)(kind, case.size))
        # exact: every message of the case is case.size bytes, so a byte stream needs no frame
        stream = self.mode == "stream"
        peer = Peer(channel, kind, case.size, place.peer_cpu, exact=True, stream=stream)
        peer.start()
        stack.callback(peer.stop)
        return _LocalPeer(channel, peer)

    def close(self) -> None:
        pass  # nothing is held between cases


class _LocalPeer:
    """A :class:`Peer` of this process: commands and reports over its control pipes."""

    exact_size = True  # the peer echoes exactly case.size bytes, unframed on a byte stream

    def __init__(self, channel: Channel, peer: Peer) -> None:
        self.channel = channel
        self.peer = peer

    @property
    def link(self) -> _LocalPeer:
        return self

    def open_client(self, stack: contextlib.ExitStack) -> tuple[End, list[int] | None]:
        with self.peer.watch(SETUP_TIMEOUT):
            end = stack.enter_context(self.channel.open("client"))
            ready = self.peer.report()
        cpus = ready.get("cpu")
        return end, [int(c) for c in cpus] if isinstance(cpus, list) else None

    def explain(self, message: str) -> str:
        """Add how a forked peer ended when that explains the failure (e.g. SIGKILL)."""
        status = self.peer.exit_status
        if status is None or "peer process" in message:
            return message
        if os.WIFSIGNALED(status):
            return f"{message} (peer process killed by {signal.Signals(os.WTERMSIG(status)).name})"
        if os.WEXITSTATUS(status) != 0:
            return f"{message} (peer process exited with status {os.WEXITSTATUS(status)})"
        return message

    # -- the Link -----------------------------------------------------------------------

    def guard(self, timeout: float) -> AbstractContextManager[None]:
        return self.peer.watch(timeout)

    def start(self, n: int, untimed: int = 0) -> None:
        self.peer.command(n, untimed)

    def finish(self) -> CtxSwitches:
        counts = self.peer.report()
        return CtxSwitches(
            int(counts["voluntary"]),
            int(counts["involuntary"]),
            float(counts["user_s"]),
            float(counts["system_s"]),
            int(counts["last_cpu"]),
            int(counts["messages"]),
            int(counts["crc32"]) if "crc32" in counts else None,
        )
