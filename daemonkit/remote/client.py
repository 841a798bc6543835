"""The client side of ``daemonkit serve``: ends that the bench's timed loop drives unchanged.

:class:`RemoteServer` is one connection to a server's ROUTER for control (its settings, its
context-switch counts); :meth:`RemoteServer.open` gives a :class:`PayloadEnd` per channel:

* ``zmq-tcp``: a DEALER socket. ``send`` is one single-frame message (an echo request);
  ``recv_into`` takes the echo straight into the caller's buffer (``zmq_recv`` into it: no
  ``bytes`` object is made).
* ``tcp``: a connected TCP socket with ``TCP_NODELAY``; a 4-byte network-order length and the
  bytes in one ``sendmsg``, read back into the caller's buffer.

Both give up after ``timeout`` seconds without a reply (``ZMQ_RCVTIMEO``, ``SO_RCVTIMEO``):
a host that vanished mid-run is an error, never a hang.

*Kernel path*: connect(2); for ``tcp`` sendmsg(2)/recv(2) from this thread; for ``zmq-tcp``
this thread hands each message to libzmq's I/O thread (a write to an eventfd, then that
thread's send(2)), and is woken the same way when the reply arrives: two thread hand-offs
per direction that the plain socket does not pay.
*Lifetime*: sockets and the ZeroMQ context live until :meth:`RemoteServer.close`.
*See also*: zmq_socket(3) (DEALER), zmq_recv(3), tcp(7), socket(7).
"""

from __future__ import annotations

import json
import socket
from typing import Any

import zmq

from daemonkit.channels.base import PayloadEnd
from daemonkit.errors import ChannelError, DaemonkitError, PeerDiedError
from daemonkit.remote.wire import (
    NET_HEADER,
    OP_INFO,
    REMOTE_CHANNELS,
    Address,
    recv_exactly,
    send_frame,
    set_timeouts,
)

__all__ = ["NoServerError", "RemoteServer", "TcpRemoteEnd", "ZmqRemoteEnd"]


class NoServerError(DaemonkitError):
    """Nothing that speaks the ``daemonkit serve`` protocol answered at the address."""


def dealer(
    ctx: zmq.Context[zmq.Socket[bytes]], address: Address, timeout: float
) -> zmq.Socket[bytes]:
    """A DEALER connected to *address*: no lingering at close, blocking calls bounded in time."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    s.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    s.setsockopt(zmq.IPV6, int(address.ipv6))
    s.connect(address.zmq_url)  # asynchronous: libzmq connects (and reconnects) in its I/O thread
    return s


class ZmqRemoteEnd(PayloadEnd):
    """``zmq-tcp`` to a remote ROUTER."""

    def __init__(self, sock: zmq.Socket[bytes], where: str) -> None:
        self._sock = sock
        self._where = where

    def send(self, data: memoryview) -> None:
        try:
            self._sock.send(data)  # one frame: an echo; copied, as the local zmq channels do
        except zmq.Again:  # the high-water mark stayed full for the whole SNDTIMEO
            raise ChannelError("zmq-tcp", f"{self._where} took no message in time") from None

    def recv_into(self, buf: memoryview) -> int:
        try:
            n = self._sock.recv_into(buf)
        except zmq.Again:
            raise ChannelError("zmq-tcp", f"no reply from {self._where} in time") from None
        if n > len(buf):
            raise ChannelError("zmq-tcp", f"a {n}-byte reply does not fit {len(buf)} bytes")
        return n

    def _close(self) -> None:
        self._sock.close()


class TcpRemoteEnd(PayloadEnd):
    """``tcp`` to a remote listener, framed with a network-order length."""

    def __init__(self, sock: socket.socket, where: str) -> None:
        self._sock = sock
        self._where = where
        self._hdr = bytearray(NET_HEADER.size)
        self._hview = memoryview(self._hdr)

    def send(self, data: memoryview) -> None:
        try:
            send_frame(self._sock, NET_HEADER.pack(len(data)), data)
        except BlockingIOError:  # SO_SNDTIMEO expired: the server stopped reading
            raise ChannelError("tcp", f"{self._where} took no bytes in time") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise PeerDiedError("tcp", f"{self._where} closed the connection") from exc

    def recv_into(self, buf: memoryview) -> int:
        try:
            if recv_exactly(self._sock, self._hview):
                (n,) = NET_HEADER.unpack(self._hdr)
                if n > len(buf):
                    raise ChannelError("tcp", f"a {n}-byte reply does not fit {len(buf)} bytes")
                if recv_exactly(self._sock, buf[:n]):
                    return int(n)
        except BlockingIOError:  # SO_RCVTIMEO expired
            raise ChannelError("tcp", f"no reply from {self._where} in time") from None
        except ConnectionResetError as exc:
            raise PeerDiedError("tcp", f"{self._where} reset the connection") from exc
        raise PeerDiedError("tcp", f"{self._where} closed the connection (end of file)")

    def _close(self) -> None:
        self._sock.close()


class RemoteServer:
    """A running ``daemonkit serve``: its settings, and ends connected to it."""

    _control: zmq.Socket[bytes] | None = None

    def __init__(self, address: Address, timeout: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout
        self._probe()
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            self._control = dealer(self.ctx, address, timeout)
            self.settings = self.info()  # the first answer proves a server is there
        except BaseException:
            self.close()
            raise

    def _probe(self) -> None:
        """One plain TCP connect first: libzmq retries a refused connection silently, so
        without it "nobody listens" would only show as a timeout."""
        try:
            socket.create_connection((self.address.host, self.address.port), self.timeout).close()
        except OSError as exc:
            why = exc.strerror or "timed out"
            raise NoServerError(f"no daemonkit serve at {self.address.zmq_url}: {why}") from exc

    def info(self) -> dict[str, Any]:
        """The server's settings, counters and context switches, as it reports them now."""
        assert self._control is not None
        try:
            self._control.send_multipart((OP_INFO, b""))
            _, body = self._control.recv_multipart()
            return dict(json.loads(body))
        except zmq.Again:
            # A late reply would answer the next request: start again on a fresh socket.
            self._control.close()
            self._control = dealer(self.ctx, self.address, self.timeout)
            raise NoServerError(
                f"no daemonkit serve answered at {self.address.zmq_url} within {self.timeout:g} s"
            ) from None
        except ValueError as exc:  # a reply of the wrong shape, or not JSON
            raise NoServerError(f"{self.address.zmq_url} is not a daemonkit serve") from exc

    def open(self, channel: str) -> PayloadEnd:
        """A client end of *channel* (``zmq-tcp`` or ``tcp``) connected to the server."""
        if channel == "zmq-tcp":
            return ZmqRemoteEnd(dealer(self.ctx, self.address, self.timeout), self.where)
        if channel not in REMOTE_CHANNELS:
            raise ChannelError(channel, "not served by daemonkit serve")
        port = self.settings.get("tcp_port")
        if not isinstance(port, int):
            raise ChannelError("tcp", f"{self.where} serves no plain TCP endpoint")
        family = socket.AF_INET6 if self.address.ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.address.host, port))
            sock.settimeout(None)  # blocking again; the timeouts below are the kernel's
            set_timeouts(sock, self.timeout)
        except OSError as exc:
            sock.close()
            raise ChannelError("tcp", f"connect to {self.address.host}:{port}: {exc}") from exc
        return TcpRemoteEnd(sock, f"{self.address.host}:{port}")

    @property
    def where(self) -> str:
        return self.address.zmq_url

    def close(self) -> None:
        """Close the control socket and end the context. Safe to call twice."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if not self.ctx.closed:
            self.ctx.destroy(linger=0)  # also closes an end left open: term() never waits

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
