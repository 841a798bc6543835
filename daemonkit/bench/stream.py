"""One case in stream mode: one-way messages pipelined as fast as the channel takes them.

What lmbench's ``bw_pipe`` and ``bw_unix`` measure, for every payload channel: the client sends
a batch of messages back to back without waiting for any answer, the peer takes them and, once
the last has arrived, sends one acknowledgement. The batch's wall time gives messages per second
and MB/s (one way, MB = 10**6 bytes); the CPU time of each end gives its cost per message.

Facts about stream mode:

* A byte stream (pipe, FIFO, stream sockets) carries exactly the messages' bytes, no frame
  header (both ends know the size, as in ping-pong: :func:`~daemonkit.bench.peer.exact_roundtrips`).
  The writer blocks only when the kernel's buffer is full: that is where the pipelining ends.
* A channel that hands one buffer back and forth, or whose protocol alternates
  (``Channel.turns``: the shared-memory channels, ZeroMQ's REQ/REP), cannot pipeline: each
  message waits for the receiver's empty reply (no payload), and the figure shows it.
* Notification channels carry no bytes and are not measured in this mode.
* The content is checked per batch, outside the timed region: every batch sends fresh bytes
  (an old batch's message left in a buffer will not match), and once the batch is over the
  peer reports the CRC-32 of the last message it received, computed after its CPU time was
  read; the client compares it with the CRC-32 of what it sent. A mismatch is the case's
  error. On a byte stream the lengths hold by construction (the peer reads exactly the wire
  size or fails); the checksum also catches a stream that slipped out of step.

*Kernel path*: the channel's own calls; getrusage(2) around each batch; the checksums are
zlib's CRC-32 (no system call).
*Lifetime*: nothing of its own.
*See also*: bw_pipe(8), bw_unix(8), :mod:`daemonkit.bench.measure`.
"""

from __future__ import annotations

import math
import os
import random
import time
import zlib
from dataclasses import replace

from daemonkit.bench.measure import SETUP_TIMEOUT, Link, Progress, Settings, client_usage
from daemonkit.bench.peer import CtxSwitches, stream_messages, wire_size
from daemonkit.bench.results import CpuCost, CpuPerRoundtrip, Result
from daemonkit.channels import channel_class
from daemonkit.channels.base import End, PayloadEnd
from daemonkit.errors import ChannelError

__all__ = ["measure_stream"]

_BATCH_S = 0.25  # aim for batches this long
_BATCHES = 10


def measure_stream(
    base: Result,
    end: End,
    link: Link,
    settings: Settings,
    progress: Progress,
    peer_cpus: list[int] | None,
) -> Result:
    """Warm-up, then timed batches of one-way messages over *end*; rates once they are over."""
    assert isinstance(end, PayloadEnd)
    what = f"{base.channel} {base.peer} {base.size} B (stream)"
    fds = end.stream_fds() if link.exact_size else None
    turns = channel_class(base.channel).turns
    content = bytearray(wire_size(base.size) if fds is not None else base.size)
    msg = memoryview(content)
    rng = random.Random(os.getpid())
    checksums = 0
    ack = memoryview(bytearray(max(base.size, 1)))
    peer_is_thread = base.peer == "thread"
    client_cpus = sorted(os.sched_getaffinity(0))

    def batch(n: int, est_s: float | None) -> tuple[float, CtxSwitches, CtxSwitches]:
        nonlocal checksums
        content[:] = rng.randbytes(len(content))  # fresh bytes: a stale buffer will not match
        timeout = max(10.0, 20 * n * est_s) if est_s else SETUP_TIMEOUT
        with link.guard(timeout):
            link.start(n)
            thread0, proc0 = CtxSwitches.of_this_thread(), CtxSwitches.of_this_process()
            t0 = time.perf_counter_ns()
            stream_messages(base.channel, end, fds, msg, ack, n, turns)
            elapsed = (time.perf_counter_ns() - t0) / 1e9
            thread1, proc1 = CtxSwitches.of_this_thread(), CtxSwitches.of_this_process()
            peer = link.finish()
        if content and peer.crc32 is not None:  # outside the timed region, as is its CRC
            checksums += 1
            if peer.crc32 != zlib.crc32(content):
                raise ChannelError(
                    base.channel, "the last message received differs from the one sent (CRC-32)"
                )
        return elapsed, client_usage(thread1 - thread0, proc1 - proc0, peer, peer_is_thread), peer

    est_s: float | None = None
    if settings.warmup:
        progress(f"{what}: warm-up", 0.0)
        elapsed, _, _ = batch(settings.warmup, None)
        est_s = elapsed / settings.warmup
    sent, seconds = 0, 0.0
    cu = cs = pu = ps = 0.0
    peer_known = True
    seen: dict[str, set[int]] = {"client": set(), "peer": set()}
    rates: list[float] = []
    started = time.monotonic()
    target, duration = settings.iterations, settings.duration
    per_batch = math.ceil(target / _BATCHES) if target else 0
    while True:
        if target is not None:
            if sent >= target:
                break
            n = min(target - sent, per_batch)
            if est_s:
                n = min(n, max(1, int(_BATCH_S / est_s)))
        else:
            assert duration is not None
            if time.monotonic() - started >= duration:
                break
            n = max(1, int(min(_BATCH_S, duration / _BATCHES) / est_s)) if est_s else 100
        elapsed, mine, peer = batch(n, est_s)
        sent += n
        seconds += elapsed
        est_s = elapsed / n
        rates.append(n / elapsed)
        cu, cs = cu + (mine.user_s or 0.0), cs + (mine.system_s or 0.0)
        peer_known = peer_known and peer.cpu_s is not None
        pu, ps = pu + (peer.user_s or 0.0), ps + (peer.system_s or 0.0)
        for side, counts in (("client", mine), ("peer", peer)):
            if counts.last_cpu is not None:
                seen[side].add(counts.last_cpu)
        done = sent / target if target else (time.monotonic() - started) / (duration or 1)
        progress(what, min(1.0, done))

    per_s = sent / seconds

    def us(x: float) -> float:
        return round(x * 1e6 / sent, 4)

    return replace(
        base,
        mode="stream",
        iterations=sent,
        messages_per_s=round(per_s, 1),
        mb_per_s=round(base.size * per_s / 1e6, 3),
        batch_messages_per_s=[round(r, 1) for r in rates],
        cpu_us_per_message=CpuPerRoundtrip(
            client=CpuCost(us(cu), us(cs)),
            peer=CpuCost(us(pu), us(ps)) if peer_known else None,
        ),
        pinning={"client": client_cpus, "peer": list(peer_cpus) if peer_cpus else []},
        ran_on={side: sorted(cpus) for side, cpus in seen.items()},
        framed=None if fds is None and end.stream_fds() is None else fds is None,
        verified={"checksums": checksums},
    )
