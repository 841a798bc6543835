"""``zmq-ipc``: a ZeroMQ ROUTER socket on an ``ipc://`` address; the client is a REQ socket.

Kernel path: libzmq's ``ipc`` transport is an ``AF_UNIX`` stream socket
(``dk.PID.zmq-ipc.N`` in the runtime dir), made 0600 and listening by
:func:`~daemonkit.channels.socket_file.listen_private` and adopted by the ROUTER socket with
``ZMQ_USE_FD`` (:func:`~daemonkit.channels.socket_file.adopt_listener` says why), driven by
libzmq's I/O thread in each process: a message crosses application thread -> I/O thread
(an in-process pipe plus an eventfd wake-up) -> socket -> the peer's I/O thread -> its
application thread. Message boundaries are kept by ZMTP framing, so no length header of our
own. pyzmq's ``send(copy=False)`` hands the buffer over without a copy; ``recv_into`` fills
the caller's buffer.

Facts about REQ and the daemon's side: the client's REQ socket enforces strict alternation
(send, receive, send, ...), which suits a ping-pong, and wraps each request in an envelope
(an empty delimiter frame). The daemon's side is a ROUTER, not a REP: a REP socket keeps
state between a request and its reply, and one peer that sends frames without the envelope
(a DEALER, say) left it waiting for good, so every later client hung. A ROUTER keeps no
such state: each message arrives with the sender's identity in front and goes back to that
identity, envelope and all, whatever it holds; a reply to a peer that has gone is dropped.
One ROUTER serves any number of clients, fairly queued, so the daemon needs one thread for
all of them. Per-client counting is therefore not available: ``clients`` counts the open
requests still attached.

Lifetime: the socket file exists from start() to stop(): stop() terminates the context (the
serving thread's recv raises ``ContextTerminated`` and closes its socket, and libzmq the
listening descriptor) and unlinks the file, which libzmq did not create and leaves alone.

See also: zmq_ipc(7), zmq_socket(3) ZMQ_REQ/ZMQ_ROUTER, unix(7).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from typing import Any

import zmq

from daemonkit.channels.base import End, PayloadEnd
from daemonkit.channels.socket_file import adopt_listener, listen_private
from daemonkit.errors import ChannelError, PeerDiedError
from daemonkit.service.endpoints.base import ClientEnd, Endpoint, Session, start_thread
from daemonkit.service.trust import TrustedDir, UntrustedError

__all__ = ["ZmqClientEnd", "ZmqIpcEndpoint"]


class ZmqIpcEndpoint(Endpoint):
    name = "zmq-ipc"

    _ctx: zmq.Context[zmq.Socket[bytes]] | None = None

    def start(self) -> None:
        self.path = self.held_dir / self.object_name()  # made and removed through the held dir
        # 0600 from bind(2) on (OSError if not); the backlog is libzmq's default ZMQ_BACKLOG
        listener = listen_private(self.path, 100)
        self._ctx = zmq.Context()  # starts libzmq's I/O thread: after daemonization
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            adopt_listener(sock, listener.detach(), f"ipc://{self.path}")
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            self.stop()
            raise ChannelError(self.name, f"bind ipc://{self.path}: {exc}") from exc
        self._echo = Session()  # all clients share the one serving thread
        start_thread(lambda: self._serve(sock), f"{self.name}-rep")

    @staticmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        what = "zmq-ipc reply"
        address = reply.get("address")
        if not isinstance(address, str) or not address.startswith("ipc://"):
            raise UntrustedError(f"{what}: 'address' is not an ipc:// address")
        name = address.removeprefix("ipc://")
        sock_name = rdir.object_name(name, daemon_pid, "zmq-ipc", what)
        rdir.entry(sock_name, stat.S_IFSOCK, what)
        return ZmqClientEnd(f"ipc://{rdir.path / sock_name}")

    def _serve(self, sock: zmq.Socket[bytes]) -> None:
        # A zmq socket belongs to one thread; this one is only ever used here (and closed here).
        try:
            while True:
                frames = sock.recv_multipart(copy=False)  # identity, envelope, message
                sock.send_multipart(frames, copy=False)  # the same frames back: zero-copy
                self._echo.echoes += 1
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close(linger=0)

    def counters(self) -> dict[str, Any]:
        base = super().counters()
        return {"echoes": self._echo.echoes, "clients": base["clients"]}

    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        session = self.new_session()
        address = f"ipc://{self.runtime_dir / self.path.name}"  # the name clients know
        return {"address": address}, lambda: self.end_session(session)

    def stop(self) -> None:
        if self._ctx is None:
            return
        self._ctx.term()  # the serving thread's recv raises ContextTerminated; waits for close
        self._ctx = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class ZmqClientEnd(PayloadEnd, ClientEnd):
    """A REQ socket connected to the daemon's ROUTER socket."""

    def __init__(self, address: str) -> None:
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.REQ)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(address)

    def send(self, data: memoryview) -> None:
        self._sock.send(data, copy=False)

    def recv_into(self, buf: memoryview) -> int:
        try:
            n: int = self._sock.recv_into(buf)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.ETERM:
                raise PeerDiedError("zmq-ipc", "context terminated") from exc
            raise ChannelError("zmq-ipc", f"recv: {exc}") from exc
        return n

    def _close(self) -> None:
        try:
            self._sock.close(linger=0)
            self._ctx.term()
        finally:
            self._release_control()
