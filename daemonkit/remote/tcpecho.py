"""The plain TCP endpoint of ``daemonkit serve``: framed echo, one thread per client, bounded.

The main loop of :mod:`daemonkit.remote.serve` calls :meth:`TcpEcho.accept` when the listener
is readable; each accepted client gets a thread that reads a 4-byte network-order length and
that many bytes, and writes both back, until the client leaves.

Facts about the limits:

* At most ``max_connections`` clients at once (``listen(2)``'s backlog is that number too).
  One more is accepted and closed at once: it reads end-of-file instead of waiting in a queue.
* A length above ``max_size`` closes the connection before any buffer is grown; the bytes the
  client already sent stay unread, so the kernel answers the close with RST. A connection's
  buffer grows to its largest message, so memory stays below ``max_connections x max_size``.
* ``SO_RCVTIMEO``/``SO_SNDTIMEO`` (``idle_timeout``): a client silent that long, or one that
  stops reading its echoes, loses its connection and its slot.
* accept(2) failing with ``EMFILE``, ``ENFILE``, ``ENOMEM``: the listener pauses
  (``paused_until``, see :mod:`daemonkit.backoff`) and the main loop leaves it out of its
  poll until then; a thread that cannot be started refuses that one client.
* :meth:`TcpEcho.close` shuts every connection down (``shutdown(2)``): each thread's ``recv``
  returns 0 and the thread ends; then the threads are joined.

*Kernel path*: socket(2), bind(2), listen(2), accept4(2); recv(2) and sendmsg(2) per message
in the client's thread; shutdown(2) and close(2) at the end.
*Lifetime*: process-persistent; the kernel closes everything if the process dies.
*See also*: tcp(7), socket(7) (SO_RCVTIMEO), listen(2), shutdown(2), pthreads(7).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from daemonkit.backoff import AcceptBackoff
from daemonkit.remote.wire import NET_HEADER, recv_exactly, send_frame, set_timeouts

__all__ = ["TcpEcho"]


class TcpEcho:
    """A listening socket and its client threads."""

    _listener: socket.socket | None = None

    def __init__(
        self, max_size: int, max_connections: int, idle_timeout: float, log: Callable[[str], None]
    ) -> None:
        self.max_size = max_size
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.log = log
        self.address: tuple[str, int] = ("", 0)
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()  # guards _conns and _counters (one writer per client)
        self._counters = dict.fromkeys(("echoes", "refused"), 0)
        self.backoff = AcceptBackoff()
        self.paused_until: float | None = None  # accept failed for want of a resource

    def listen(self, host: str, port: int, ipv6: bool) -> None:
        """Bind and listen; OSError (EADDRINUSE, EADDRNOTAVAIL...) goes to the caller."""
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._listener = s
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind over TIME_WAIT
        s.bind((host, port))
        s.listen(self.max_connections)
        s.setblocking(False)  # the main loop polls it; accept must never block that loop
        self.address = s.getsockname()[:2]

    def fileno(self) -> int:
        return self._listener.fileno() if self._listener is not None else -1

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                **self._counters,
                "open": len(self._conns),
                "accept_backoffs": self.backoff.failures,
            }

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1

    def accept(self) -> None:
        """Take one pending client: serve it in a new thread, or close it when full."""
        assert self._listener is not None
        try:
            conn, peer = self._listener.accept()  # Python makes the new socket blocking
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # EMFILE & co.: pause the listener (see daemonkit.backoff)
            delay = self.backoff.failed(exc)
            if delay is None:
                raise
            if self.backoff.new_streak:
                self.log(f"tcp: accept: {exc.strerror}; backing off")
            self.paused_until = time.monotonic() + delay
            return
        self.backoff.succeeded()
        with self._lock:
            if len(self._conns) >= self.max_connections:
                self._counters["refused"] += 1
                conn.close()  # the client reads end-of-file at once
                self.log(f"tcp: refused {peer[0]}:{peer[1]}: {len(self._conns)} connections open")
                return
            set_timeouts(conn, self.idle_timeout)
            t = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._conns[conn] = t
        try:
            t.start()
        except RuntimeError as exc:  # pthread_create: EAGAIN; this client is refused
            with self._lock:
                self._conns.pop(conn, None)
                self._counters["refused"] += 1
            conn.close()
            self.log(f"tcp: refused {peer[0]}:{peer[1]}: cannot start a thread ({exc})")

    def _echo(self, conn: socket.socket) -> None:
        """One client: read a length and that many bytes, send them back, until it leaves."""
        header = bytearray(NET_HEADER.size)
        hview = memoryview(header)
        buf = bytearray(0)
        try:
            while recv_exactly(conn, hview):
                (n,) = NET_HEADER.unpack(header)
                if n > self.max_size:  # refuse before growing any buffer
                    self._count("refused")
                    self.log(f"tcp: refused a {n}-byte message (limit {self.max_size})")
                    return
                if len(buf) < n:
                    buf = bytearray(n)  # grows to the largest message seen, at most max_size
                view = memoryview(buf)[:n]
                if not recv_exactly(conn, view):
                    return
                send_frame(conn, bytes(header), view)
                self._count("echoes")
        except OSError:
            pass  # idle timeout (EAGAIN), reset by the client, or shut down by close()
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()

    def close(self, timeout: float = 2.0) -> None:
        """Stop accepting, end every connection, join the threads. Safe to call twice."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns.items())
        for conn, _ in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # its thread's recv returns 0 (end-of-file)
        deadline = time.monotonic() + timeout
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))
