"""An echo peer that other hosts can reach: ZeroMQ (``zmq-tcp``) and plain TCP (``tcp``).

:meth:`Server.run` is these steps, one method each:

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
* The TCP endpoint serves at most ``max_connections`` clients, one thread each; a client
  beyond that is accepted and closed at once (it reads end-of-file). A length prefix above
  ``max_size`` closes the connection before any buffer is grown (the unread bytes make the
  kernel answer with RST). A connection idle for ``idle_timeout`` seconds is closed.

*Kernel path*: socket(2), bind(2), listen(2), accept4(2); libzmq's I/O thread runs epoll_wait(2)
and recv(2)/send(2) on its TCP sockets; ``poll(2)`` on the ROUTER's notification fd, the
listener and the wake-up pipe; recv(2) and sendmsg(2) in the TCP threads.
*Lifetime*: process-persistent; every socket is closed by :meth:`Server.close`, and by the
kernel if the process dies.
*See also*: zmq_setsockopt(3), zmq_socket(3), tcp(7), signal(7), pthreads(7).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import zmq

from daemonkit import __version__
from daemonkit.bench.machine import describe
from daemonkit.errors import DaemonkitError
from daemonkit.remote._wire import (
    FLUSH_REPLY,
    NET_HEADER,
    OP_ECHO,
    OP_FLUSH,
    OP_INFO,
    OP_SINK,
    Address,
    hwm_for,
    recv_exactly,
    send_frame,
    set_timeouts,
)

__all__ = ["ServeError", "ServeOptions", "Server"]

_BURST = 64  # ROUTER messages handled before looking at the listener and signals again
_TICK_MS = 500
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


def _record_only(signum: int, frame: FrameType | None) -> None:
    """The C-level handler already wrote the signal number into the wake-up pipe."""


class Server:
    _router: zmq.Socket[bytes] | None = None
    _listener: socket.socket | None = None
    _wake_r = _wake_w = -1

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.hwm = hwm_for(opts.max_size)
        self.counters = dict.fromkeys(("echoes", "sinks", "refused", "dropped", "bad"), 0)
        self._ctx = zmq.Context()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()  # guards _conns and the TCP counters
        self._sinks: dict[bytes, list[int]] = {}
        self._machine = describe()
        self._old_signals: dict[int, Any] = {}
        self.zmq_url = ""
        self.tcp_address: tuple[str, int] | None = None

    # -- steps 1 and 2 --------------------------------------------------------------------

    def open(self) -> None:
        """Install the signal recording, bind both endpoints; on failure undo and raise."""
        try:
            self._record_signals()
            self._bind_router()
            if self.opts.tcp_port is not None:
                self._listen_tcp()
        except BaseException:
            self.close()
            raise

    def _record_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_signals[sig] = signal.signal(sig, _record_only)

    def _bind_router(self) -> None:
        r = self._ctx.socket(zmq.ROUTER)
        self._router = r
        r.setsockopt(zmq.LINGER, 0)  # close() drops unsent replies instead of waiting
        r.setsockopt(zmq.MAXMSGSIZE, self.opts.max_size)
        r.setsockopt(zmq.RCVHWM, self.hwm)
        r.setsockopt(zmq.SNDHWM, self.hwm)
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unroutable or full: an error, not a silent drop
        r.setsockopt(zmq.IPV6, int(self.opts.bind.ipv6))
        try:
            r.bind(self.opts.bind.zmq_url)
        except zmq.ZMQError as exc:
            raise ServeError(f"cannot bind {self.opts.bind.zmq_url}: {exc.strerror}") from exc
        self.zmq_url = r.getsockopt_string(zmq.LAST_ENDPOINT)  # the real port if 0 was asked

    def _listen_tcp(self) -> None:
        family = socket.AF_INET6 if self.opts.bind.ipv6 else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._listener = s
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind over TIME_WAIT
        try:
            s.bind((self.opts.bind.host, self.opts.tcp_port or 0))
        except OSError as exc:
            raise ServeError(
                f"cannot bind tcp {self.opts.bind.host}:{self.opts.tcp_port}: {exc.strerror}"
            ) from exc
        s.listen(self.opts.max_connections)
        s.setblocking(False)
        self.tcp_address = s.getsockname()[:2]

    # -- step 3: the loop -----------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; then stop (step 4) and return 0."""
        assert self._router is not None, "open() first"
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        if self._listener is not None:
            poller.register(self._listener.fileno(), zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll(_TICK_MS))
                if self._wake_r in ready and self._signalled():
                    return 0
                if self._router in ready:
                    self._serve_router()
                if self._listener is not None and self._listener.fileno() in ready:
                    self._accept()
        finally:
            self.close()

    def _signalled(self) -> bool:
        with contextlib.suppress(BlockingIOError):
            for signum in os.read(self._wake_r, 64):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    log(f"{signal.Signals(signum).name}: stopping")
                    return True
        return False

    def _serve_router(self) -> None:
        assert self._router is not None
        for _ in range(_BURST):  # a busy ROUTER must not starve the listener and signals
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) != 3:  # identity, operation, body
                self.counters["bad"] += 1
                continue
            ident, op, body = frames
            reply = self._answer(ident.bytes, op.bytes, body)
            if reply is None:
                continue
            try:  # NOBLOCK + ROUTER_MANDATORY: a full or vanished peer is an error here
                self._router.send_multipart([ident, op, reply], zmq.NOBLOCK, copy=False)
            except zmq.ZMQError:
                self.counters["dropped"] += 1

    def _answer(self, ident: bytes, op: bytes, body: zmq.Frame) -> Any:
        """The reply body for one request, or None when the operation has no reply."""
        if op == OP_ECHO:
            self.counters["echoes"] += 1
            return body  # the received frame goes back as is: no copy of the bytes
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
            "counters": dict(self.counters),
            "ctx_switches": {"voluntary": ru.ru_nvcsw, "involuntary": ru.ru_nivcsw},
            "machine": self._machine,
        }

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        with self._lock:
            if len(self._conns) >= self.opts.max_connections:
                self.counters["refused"] += 1
                conn.close()  # the client reads end-of-file at once
                log(f"tcp: refused {peer[0]}:{peer[1]}: {len(self._conns)} connections open")
                return
            conn.setblocking(True)  # accepted sockets may inherit O_NONBLOCK: not on Linux
            set_timeouts(conn, self.opts.idle_timeout)
            t = threading.Thread(target=self._echo_tcp, args=(conn,), daemon=True)
            self._conns[conn] = t
        t.start()

    def _echo_tcp(self, conn: socket.socket) -> None:
        """One client: read a length and that many bytes, send them back, until it leaves."""
        header = bytearray(NET_HEADER.size)
        hview = memoryview(header)
        buf = bytearray(0)
        try:
            while recv_exactly(conn, hview):
                (n,) = NET_HEADER.unpack(header)
                if n > self.opts.max_size:  # refuse before growing any buffer
                    with self._lock:
                        self.counters["refused"] += 1
                    log(f"tcp: refused a {n}-byte message (limit {self.opts.max_size})")
                    return
                if len(buf) < n:
                    buf = bytearray(n)  # grows to the largest message seen, at most max_size
                view = memoryview(buf)[:n]
                if not recv_exactly(conn, view):
                    return
                send_frame(conn, bytes(header), view)
                with self._lock:
                    self.counters["echoes"] += 1
        except OSError:
            pass  # idle timeout (EAGAIN), reset by the client, or shut down by close()
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()

    # -- step 4 ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting, end every connection, release the sockets. Safe to call twice."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns.items())
        for conn, _ in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # its thread's recv returns 0 (end-of-file)
        for _, thread in conns:
            thread.join(2.0)
        if self._router is not None:
            self._router.close()
            self._router = None
        if not self._ctx.closed:
            self._ctx.term()
        for sig, old in self._old_signals.items():
            signal.signal(sig, old)
        self._old_signals.clear()
        if self._wake_w >= 0:
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} daemonkit serve[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)
