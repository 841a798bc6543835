"""An echo peer that other hosts can reach: ZeroMQ (``zmq-tcp``) and plain TCP (``tcp``).

:meth:`Server.open` and :meth:`Server.run` are these steps, one method each:

1. record SIGTERM and SIGINT in a wake-up pipe (the handlers only write a byte);
2. bind the ROUTER socket, with its limits, and the TCP listener;
3. loop: wait on the ROUTER, the listener and the wake-up pipe together; echo, accept (up to
   the connection limit), or leave on a signal;
4. stop: close the listener, shut down every TCP connection (its thread sees end-of-file and
   leaves), join the threads, close the ROUTER and end the ZeroMQ context.

Facts about the limits (a stray or hostile client must not exhaust memory):

* ``ZMQ_MAXMSGSIZE``: libzmq reads each frame's size from its header and drops the connection
  when it exceeds the limit, before allocating anything for it.
* High-water marks (``ZMQ_RCVHWM``/``ZMQ_SNDHWM``) bound the messages queued per connection in
  each direction, chosen so that HWM x max size stays near 64 MiB. A full receive queue
  stops libzmq from reading the TCP socket: the sender's kernel buffers fill and TCP flow
  control pushes back. Replies go out with ``ZMQ_ROUTER_MANDATORY`` and ``NOBLOCK``: a peer
  that does not read its replies loses them; the server never blocks on it.
* A connection that starts the ZMTP greeting but does not finish the handshake within 5 s
  is dropped (``ZMQ_HANDSHAKE_IVL``). A client that speaks no ZeroMQ at all (its first byte
  is not the greeting's 0xFF) is taken by libzmq for a ZMTP 1.0 peer and keeps its
  connection, and its few KiB of buffers, until it closes.
* libzmq has no limit on the number of connections, and each may queue that much; and any
  client may ask for the machine description that results files record (hostname, kernel,
  CPU). Both are reasons the default address is loopback: open it to a network only behind a
  firewall that admits the hosts you measure from.
* The plain TCP endpoint has its own limits (connections, message size, idle time): see
  :mod:`daemonkit.remote.tcpecho`.

*Kernel path*: libzmq's I/O thread runs epoll_wait(2) and recv(2)/send(2) on the ROUTER's TCP
connections and wakes this thread through an eventfd; ``poll(2)`` waits on that eventfd, the
TCP listener and the wake-up pipe together.
*Lifetime*: process-persistent; every socket is closed by :meth:`Server.close`, and by the
kernel if the process dies.
*See also*: zmq_setsockopt(3), zmq_socket(3) (ROUTER), signal(7), :mod:`daemonkit.remote.tcpecho`.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import zmq

from daemonkit import __version__
from daemonkit.errors import DaemonkitError
from daemonkit.interrupts import SignalPipe
from daemonkit.machine import describe
from daemonkit.remote.tcpecho import TcpEcho
from daemonkit.remote.wire import (
    FLUSH_REPLY,
    OP_FLUSH,
    OP_INFO,
    OP_SINK,
    Address,
    hwm_for,
)

__all__ = ["ServeError", "ServeOptions", "Server"]

_BURST = 64  # ROUTER messages handled before looking at the listener and signals again
_TICK_MS = 500
_HANDSHAKE_MS = 5000  # ZMTP greeting and handshake must be done by then (libzmq: 30 s)
_MAX_SINKS = 256  # throughput counters kept at once (one per client identity)


class ServeError(DaemonkitError):
    """The server could not bind or start."""


@dataclass(frozen=True)
class ServeOptions:
    bind: Address  # the ROUTER's address; the TCP listener uses the same host
    tcp_port: int | None  # None: no plain TCP endpoint
    max_size: int
    max_connections: int
    idle_timeout: float


class Server:
    """The echo peer: a ROUTER and (optionally) a TCP endpoint, served by one loop."""

    _router: zmq.Socket[bytes] | None = None
    _tcp: TcpEcho | None = None
    _signals: SignalPipe | None = None

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.hwm = hwm_for(opts.max_size)
        self.counters = dict.fromkeys(("echoes", "sinks", "dropped", "bad"), 0)  # ROUTER only
        self._ctx = zmq.Context()
        self._sinks: dict[bytes, list[int]] = {}
        self._machine = describe()
        self.zmq_url = ""
        self.tcp_address: tuple[str, int] | None = None

    # -- steps 1 and 2 --------------------------------------------------------------------

    def open(self) -> None:
        """Install the signal recording, bind both endpoints; on failure undo and raise."""
        try:
            self._record_signals()
            self._bind_router()
            if self.opts.tcp_port is not None:
                self._listen_tcp(self.opts.tcp_port)
        except BaseException:
            self.close()
            raise

    def _record_signals(self) -> None:
        self._signals = SignalPipe((signal.SIGTERM, signal.SIGINT))

    def _bind_router(self) -> None:
        r = self._ctx.socket(zmq.ROUTER)
        self._router = r
        r.setsockopt(zmq.LINGER, 0)  # close() drops unsent replies instead of waiting
        r.setsockopt(zmq.MAXMSGSIZE, self.opts.max_size)
        r.setsockopt(zmq.RCVHWM, self.hwm)
        r.setsockopt(zmq.SNDHWM, self.hwm)
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unroutable or full: an error, not a silent drop
        r.setsockopt(zmq.HANDSHAKE_IVL, _HANDSHAKE_MS)  # a peer that never greets is dropped
        r.setsockopt(zmq.IPV6, int(self.opts.bind.ipv6))
        try:
            r.bind(self.opts.bind.zmq_url)
        except zmq.ZMQError as exc:
            raise ServeError(f"cannot bind {self.opts.bind.zmq_url}: {exc.strerror}") from exc
        self.zmq_url = r.getsockopt_string(zmq.LAST_ENDPOINT)  # the real port if 0 was asked

    def _listen_tcp(self, port: int) -> None:
        tcp = TcpEcho(self.opts.max_size, self.opts.max_connections, self.opts.idle_timeout, log)
        self._tcp = tcp
        try:
            tcp.listen(self.opts.bind.host, port, self.opts.bind.ipv6)
        except OSError as exc:
            raise ServeError(
                f"cannot bind tcp {self.opts.bind.host}:{port}: {exc.strerror}"
            ) from exc
        self.tcp_address = tcp.address

    # -- step 3: the loop -----------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; then stop (step 4) and return 0."""
        assert self._router is not None, "open() first"
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        assert self._signals is not None
        signals = self._signals.fd
        poller.register(signals, zmq.POLLIN)
        tcp = self._tcp
        if tcp is not None:
            poller.register(tcp.fileno(), zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll(_TICK_MS))
                if signals in ready and self._signalled():
                    return 0
                if self._router in ready:
                    self._serve_router()
                if tcp is None:
                    continue
                if tcp.fileno() in ready:
                    tcp.accept()
                    if tcp.paused_until is not None:  # EMFILE & co.: out of the poll a while
                        poller.unregister(tcp.fileno())
                elif tcp.paused_until is not None and time.monotonic() >= tcp.paused_until:
                    tcp.paused_until = None
                    poller.register(tcp.fileno(), zmq.POLLIN)
        finally:
            self.close()

    def _signalled(self) -> bool:
        assert self._signals is not None
        for sig in self._signals.read():
            if sig in (signal.SIGTERM, signal.SIGINT):
                log(f"{sig.name}: stopping")
                return True
        return False

    def _serve_router(self) -> None:
        r = self._router
        assert r is not None
        for _ in range(_BURST):  # a busy ROUTER must not starve the listener and signals
            try:
                frames = r.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) == 2:  # identity, body: an echo, the frames go back as they are
                self.counters["echoes"] += 1
                self._send(frames)
            elif len(frames) == 3:  # identity, operation, body
                ident, op, body = frames
                reply = self._answer(ident.bytes, op.bytes, body)
                if reply is not None:
                    self._send([ident, op, reply])
            else:
                self.counters["bad"] += 1
            if not int(r.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return  # nothing more queued: back to poll without a failing recv

    def _send(self, frames: list[Any]) -> None:
        assert self._router is not None
        try:  # NOBLOCK + ROUTER_MANDATORY: a full or vanished peer is an error here
            self._router.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            self.counters["dropped"] += 1

    def _answer(self, ident: bytes, op: bytes, body: zmq.Frame) -> Any:
        """The reply body for one request, or None when the operation has no reply."""
        if op == OP_SINK:
            self.counters["sinks"] += 1
            if ident not in self._sinks and len(self._sinks) >= _MAX_SINKS:
                del self._sinks[next(iter(self._sinks))]  # forget the oldest sender
            count = self._sinks.setdefault(ident, [0, 0])
            count[0] += 1
            count[1] += len(body)
            return None
        if op == OP_FLUSH:
            msgs, nbytes = self._sinks.pop(ident, (0, 0))
            return FLUSH_REPLY.pack(msgs, nbytes)
        if op == OP_INFO:
            return json.dumps(self.info()).encode()
        self.counters["bad"] += 1
        return None

    def info(self) -> dict[str, Any]:
        """Settings, counters and this process's context switches (all its threads)."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "version": __version__,
            "max_size": self.opts.max_size,
            "hwm": self.hwm,
            "tcp_port": self.tcp_address[1] if self.tcp_address else None,
            "max_connections": self.opts.max_connections,
            "counters": {
                "zmq": dict(self.counters),
                "tcp": self._tcp.counters() if self._tcp else {},
            },
            "ctx_switches": {"voluntary": ru.ru_nvcsw, "involuntary": ru.ru_nivcsw},
            "machine": self._machine,
        }

    # -- step 4 ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting, end every connection, release the sockets. Safe to call twice."""
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        if self._router is not None:
            self._router.close()
            self._router = None
        if not self._ctx.closed:
            self._ctx.term()
        if self._signals is not None:
            self._signals.close()  # the previous handlers back: serve may run inside a program
            self._signals = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} daemonkit serve[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)
