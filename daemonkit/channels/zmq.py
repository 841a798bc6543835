"""``zmq-ipc``, ``zmq-tcp``, ``zmq-inproc``: a ZeroMQ REQ/REP pair over ipc, loopback TCP, or
within one process.

Kernel path (``ipc``, ``tcp``): ``send`` copies the message into a ``zmq_msg_t`` and hands it,
through a lock-free queue and an eventfd wake-up, to the context's I/O thread, which
``write``\\ s it to an ``AF_UNIX`` (ipc) or TCP socket (a copy into the kernel). The
receiver's I/O thread ``read``\\ s it out (a copy; large messages go straight into a message of
the right size), wakes the application thread through another eventfd, and ``recv_into``
copies it into the caller's buffer. So four copies, two in the kernel and two in user space,
and per direction up to four thread wake-ups where a plain socket needs one: the price of
ZeroMQ's asynchronous, reconnecting sockets. ``inproc`` uses no socket at all: the
``zmq_msg_t`` crosses between threads of one context through the same queue (two copies, into
the message and out of it; no system call but the eventfd wake-up).

Facts about this module's choices:

* REQ/REP enforces ping-pong (a REQ socket cannot send twice without a reply in between),
  the request-reply pattern a daemon serves with a REP socket. A REQ whose peer died waits
  for its reply forever; the runner's SIGCHLD watch interrupts ``recv`` (libzmq blocks every
  signal in its own threads, so the signal lands on the waiting thread and ``poll`` returns
  ``EINTR``).
* A context owns threads and descriptors, which ``fork`` does not duplicate correctly: each
  end creates its own context in its own process (or thread) when it opens, never before the
  peer is forked. ``zmq-inproc`` needs one context shared by both threads, and is threads
  only.
* The listening socket is made by the creator before the peer starts, exactly as systemd
  does for socket activation, and handed to libzmq with ``ZMQ_USE_FD``: so the ipc socket
  file is 0600 from ``bind(2)`` on, the TCP port is known before the client connects (no
  probe-then-bind race), and the creator owns and unlinks the file.
* Receiving uses ``recv_into`` (no new ``bytes`` per message). Sending copies: zero-copy
  send (``copy=False``) would save one ``memcpy`` per message (roughly 0.1 ms at 1 MiB),
  but libzmq frees such a buffer from its I/O thread, so pyzmq starts a process-wide
  garbage-collector thread, with its own context and sockets, that outlives the channel and
  gets one message per freed buffer. A quick 1 MiB ping-pong showed no difference above this
  machine's noise, so the simpler copy stays and the channel leaves no thread behind.
* Every socket closes with ``ZMQ_LINGER`` 0: unsent messages are dropped at once instead of
  making ``zmq_ctx_term`` wait (forever, by default) for a peer that may be dead.

Lifetime: a context and its I/O threads live until ``term``; the ipc file
(``dk.PID.zmq-ipc.N``, in the 0700 runtime dir) stays until the creator unlinks it (libzmq
does not, for a socket it did not create itself).

See also: zmq_socket(3), zmq_ipc(7), zmq_tcp(7), zmq_inproc(7), zmq_setsockopt(3)
(ZMQ_USE_FD, ZMQ_LINGER), unix(7), tcp(7).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import zmq

from daemonkit.channels._endpoints import endpoint_path, remove_endpoint
from daemonkit.channels.base import THREAD_ONLY, Channel, PayloadEnd, PeerKind, Role
from daemonkit.channels.socket_file import adopt_listener, bind_private
from daemonkit.errors import ChannelError
from daemonkit.runtime import object_name

__all__ = ["ZmqInprocChannel", "ZmqIpcChannel", "ZmqTcpChannel"]

Context = zmq.Context[zmq.Socket[bytes]]
_SOCKET_TYPE = {"client": zmq.REQ, "server": zmq.REP}


class _ZmqEnd(PayloadEnd):
    """One REQ or REP socket; owns its context unless the context is shared (inproc)."""

    def __init__(self, channel: str, sock: zmq.Socket[bytes], ctx: Context | None) -> None:
        self._channel = channel
        self._sock = sock
        self._ctx = ctx  # terminated on close when this end made it

    def send(self, data: memoryview) -> None:
        try:
            self._sock.send(data)  # copied into a zmq_msg_t; the I/O thread writes it
        except zmq.ZMQError as exc:
            raise ChannelError(self._channel, f"send: {exc.strerror}") from exc

    def recv_into(self, buf: memoryview) -> int:
        try:
            n = self._sock.recv_into(buf)  # the whole message, copied into buf
        except zmq.ZMQError as exc:
            raise ChannelError(self._channel, f"recv: {exc.strerror}") from exc
        if n > len(buf):
            raise ChannelError(self._channel, f"message of {n} bytes truncated to {len(buf)}")
        return n

    def _close(self) -> None:
        self._sock.close(linger=0)  # drop anything unsent: the peer may be dead
        if self._ctx is not None:
            self._ctx.term()  # joins the I/O threads; returns at once with no sockets left


def _socket(channel: str, ctx: Context, role: Role) -> zmq.Socket[bytes]:
    try:
        return ctx.socket(_SOCKET_TYPE[role])
    except zmq.ZMQError as exc:
        raise ChannelError(channel, f"zmq socket: {exc.strerror}") from exc


class _ListeningZmqChannel(Channel):
    """ipc and tcp: the creator makes the listening socket; the REP end adopts it."""

    payload = True
    turns = True  # REQ/REP: a request cannot follow a request without a reply between
    endpoint = ""
    _listen_fd = -1  # class default: close() is safe after a failed __init__

    def _listen(self, listener: socket.socket, endpoint: str) -> None:
        try:
            listener.listen(8)  # from here on, connections queue in the kernel
        except OSError as exc:
            listener.close()
            raise ChannelError(self.name, f"listen: {exc.strerror}") from exc
        self._listen_fd = listener.detach()
        self.endpoint = endpoint

    def open(self, role: Role) -> PayloadEnd:
        fd = -1
        if role == "server":
            fd, self._listen_fd = self._listen_fd, -1  # libzmq will own and close it
        elif self.peer == "process":
            os.close(self._listen_fd)  # the peer process adopts its own copy (from fork)
            self._listen_fd = -1
        ctx: Context = zmq.Context()  # made here, after fork, in the end's own process
        sock = _socket(self.name, ctx, role)
        try:
            if role == "server":
                adopt_listener(sock, fd, self.endpoint)  # libzmq takes the descriptor over
            else:
                sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            ctx.term()
            raise ChannelError(self.name, f"{self.endpoint}: {exc.strerror}") from exc
        return _ZmqEnd(self.name, sock, ctx)

    def _remove(self) -> None:
        if self._listen_fd >= 0:  # never adopted (set-up failed, or no server opened)
            os.close(self._listen_fd)
            self._listen_fd = -1


class ZmqIpcChannel(_ListeningZmqChannel):
    name = "zmq-ipc"
    summary = "ZeroMQ REQ/REP over ipc:// (an AF_UNIX socket in the runtime dir); one copy each"
    path: Path | None = None

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self.path = endpoint_path(self.name)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            bind_private(listener, self.path)
        except OSError as exc:
            listener.close()
            raise ChannelError(self.name, f"bind {self.path}: {exc.strerror}") from exc
        self._listen(listener, f"ipc://{self.path}")

    def _remove(self) -> None:
        super()._remove()
        remove_endpoint(self.path)  # ours to unlink: libzmq did not create it


class ZmqTcpChannel(_ListeningZmqChannel):
    name = "zmq-tcp"
    summary = "ZeroMQ REQ/REP over tcp:// on loopback (libzmq sets TCP_NODELAY)"

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            listener.bind(("127.0.0.1", 0))  # the kernel picks a free ephemeral port
        except OSError as exc:
            listener.close()
            raise ChannelError(self.name, f"bind 127.0.0.1: {exc.strerror}") from exc
        host, port = listener.getsockname()
        self._listen(listener, f"tcp://{host}:{port}")


class ZmqInprocChannel(Channel):
    name = "zmq-inproc"
    summary = "ZeroMQ REQ/REP over inproc:// between two threads of one context; threads only"
    payload = True
    turns = True  # REQ/REP: a request cannot follow a request without a reply between
    peer_kinds = THREAD_ONLY
    _ctx: Context | None = None

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        if peer not in self.peer_kinds:
            raise ChannelError(self.name, "thread peers only: inproc lives in one context")
        self._ctx = zmq.Context()  # no fork follows: the peer is a thread of this process
        self.endpoint = "inproc://" + object_name(self.name)

    def open(self, role: Role) -> PayloadEnd:
        assert self._ctx is not None
        sock = _socket(self.name, self._ctx, role)
        try:
            if role == "server":
                sock.bind(self.endpoint)
            else:
                sock.connect(self.endpoint)  # may precede bind: libzmq >= 4 queues it
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise ChannelError(self.name, f"{self.endpoint}: {exc.strerror}") from exc
        return _ZmqEnd(self.name, sock, None)

    def _remove(self) -> None:
        if self._ctx is not None:
            # destroy: closes (linger 0) any socket an end did not close, then terminates.
            self._ctx.destroy(linger=0)
            self._ctx = None
