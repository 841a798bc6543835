"""Pipelined sends over ``zmq-tcp``: messages per second and MB/s against message size.

A round trip measures latency: one message in flight at a time. Throughput is the other
question: how fast can bytes stream when the sender never waits? As in pyzmq's ``perf``
throughput test (after libzmq's ``local_thr``/``remote_thr``), the client queues N messages
back to back; the server only counts them. Then the client sends one *flush* request: ZeroMQ
keeps the order of messages on a connection, so the server answers it after the N, with the
count and bytes it received, and the client checks both. The clock runs from the first send
to the flush reply. The part after the last send (``tail_ns``: the queue draining, plus one
round trip) is reported next to the figure; pyzmq's test starts its clock at the first
message received instead.

Facts about the pipeline: libzmq batches queued messages into large ``send(2)`` calls in its
I/O thread, so the kernel's TCP window, not the per-message overhead, sets the pace for large
messages; the sender blocks only when its high-water mark fills (``ZMQ_SNDHWM``), i.e. when
the network or the server falls behind. On a shaped link the rate limit shows directly.

*Kernel path*: the DEALER's (see :mod:`daemonkit.remote.client`); no reply per message.
*Lifetime*: one DEALER connection per message size, closed after it.
*See also*: zmq_setsockopt(3) (ZMQ_SNDHWM), tc-tbf(8), pyzmq ``perf/perf.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import zmq

from daemonkit.errors import ChannelError
from daemonkit.remote.client import RemoteServer, dealer
from daemonkit.remote.wire import FLUSH_REPLY, OP_FLUSH, OP_SINK, hwm_for

__all__ = ["SCHEMA", "Throughput", "measure"]

SCHEMA = "daemonkit.throughput/1"


@dataclass(frozen=True)
class Throughput:
    """One message size streamed: what was sent, how long it took, the rates."""

    channel: str
    size: int
    messages: int
    seconds: float
    messages_per_s: float
    mb_per_s: float  # payload bytes only, MB = 10**6 bytes
    tail_ns: int  # last send to flush reply: the queue draining plus one round trip
    verified: dict[str, int]  # what the server counted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stream(
    server: RemoteServer, sock: zmq.Socket[bytes], msg: memoryview, count: int
) -> tuple[int, int, int, int]:
    """Send *count* messages and a flush; return total and tail ns, and the server's counts."""
    copy = len(msg) < zmq.COPY_THRESHOLD  # large messages go by reference, not copied
    send = sock.send_multipart
    parts = (OP_SINK, msg)
    t0 = time.perf_counter_ns()
    for _ in range(count):
        send(parts, copy=copy)  # blocks only while the high-water mark is reached
    t_flush = time.perf_counter_ns()
    sock.send_multipart((OP_FLUSH, b""))
    _await_reply(server, sock)
    _, body = sock.recv_multipart()
    t1 = time.perf_counter_ns()
    msgs, nbytes = FLUSH_REPLY.unpack(body)
    return t1 - t0, t1 - t_flush, msgs, nbytes


def _await_reply(server: RemoteServer, sock: zmq.Socket[bytes]) -> None:
    """Wait for the flush reply while the server keeps counting messages; zmq.Again when
    it counted none for ``timeout`` s (on a slow link megabytes may still be in flight)."""
    last = -1
    while not sock.poll(int(server.timeout * 1000)):
        sinks = int(server.info()["counters"]["zmq"]["sinks"])
        if sinks == last:
            raise zmq.Again
        last = sinks


def measure(server: RemoteServer, size: int, count: int, warmup: int) -> Throughput:
    """Stream *warmup* untimed then *count* timed messages of *size* bytes to *server*."""
    if size > int(server.settings["max_size"]):
        raise ChannelError("zmq-tcp", f"{size} bytes exceed the server's limit")
    msg = memoryview(bytearray(size))
    sock = dealer(server.ctx, server.address, server.timeout)
    sock.setsockopt(zmq.SNDHWM, hwm_for(size))  # what may queue here: about 64 MiB at most
    try:
        if warmup:  # connection set up, TCP window opened: not part of the figure
            _stream(server, sock, msg, warmup)
        elapsed, tail, msgs, nbytes = _stream(server, sock, msg, count)
    except zmq.Again:
        raise ChannelError(
            "zmq-tcp", f"{server.where} stopped taking messages for {server.timeout:g} s"
        ) from None
    finally:
        sock.close()
    if (msgs, nbytes) != (count, count * size):
        raise ChannelError(
            "zmq-tcp", f"server counted {msgs} messages / {nbytes} bytes, {count} were sent"
        )
    seconds = elapsed / 1e9
    return Throughput(
        channel="zmq-tcp",
        size=size,
        messages=count,
        seconds=round(seconds, 6),
        messages_per_s=round(count / seconds, 1),
        mb_per_s=round(count * size / seconds / 1e6, 3),
        tail_ns=tail,
        verified={"messages": msgs, "bytes": nbytes},
    )
