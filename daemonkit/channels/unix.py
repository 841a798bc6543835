"""``unix-stream`` and ``unix-dgram``: ``AF_UNIX`` sockets bound to files in the runtime dir.

Kernel path: ``send``/``write`` copies the bytes from the sender's buffer into socket buffers
(``sk_buff``) that the kernel queues *directly on the receiving socket* (no network stack, no
checksums); ``recv``/``read`` copies them out and frees them: two copies per message.

* ``unix-stream`` is a byte stream like a pipe, so messages are framed
  (:mod:`daemonkit.channels._stream`). The server ``accept(2)``\\ s a connection that the
  client made at set-up, as a daemon does on its listening socket.
* ``unix-dgram`` keeps message boundaries: one ``send`` is one datagram, one ``recv`` takes it
  whole, no framing. A datagram must fit in the sender's send buffer: the kernel refuses
  with ``EMSGSIZE`` a datagram longer than ``SO_SNDBUF`` - 32 bytes. ``SO_SNDBUF`` is raised
  for large messages, but only up to ``2 * net.core.wmem_max`` (the kernel doubles the value
  asked, socket(7)); beyond that the channel raises :class:`SizeNotSupportedError` naming the
  largest size. Queued datagrams are charged to the *sender's* buffer: the receiver's
  ``SO_RCVBUF`` is ignored, and between two sockets connected to each other (as here) so is
  the ``net.unix.max_dgram_qlen`` count that limits a server's queue.

Lifetime: a socket lives while a descriptor refers to it; its *file* (``dk.PID.unix-*.N``,
mode 0600, in the 0700 runtime dir) stays until unlinked, which only the creator does. A peer
that dies shows as end-of-file on a stream socket and as ``ECONNREFUSED`` when sending to a
datagram socket; a ``recv`` blocked on a datagram socket is not woken by the death at all
(the runner's SIGCHLD watch ends it).

See also: unix(7), socket(7), socket(2), sendmsg(2), recvmsg(2), accept(2).
"""

from __future__ import annotations

import socket
from pathlib import Path

from daemonkit.channels._endpoints import AcceptedStreamChannel, endpoint_path, remove_endpoint
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.channels.socket_file import bind_private
from daemonkit.errors import ChannelError, PeerDiedError, SizeNotSupportedError

__all__ = ["UnixDgramChannel", "UnixStreamChannel"]

_DGRAM_OVERHEAD = 32  # unix_dgram_sendmsg(): EMSGSIZE when len > sk_sndbuf - 32
_KMALLOC_MAX = 4 << 20  # the datagram's head is one kmalloc; the largest is 4 MiB (order 10)


class UnixStreamChannel(AcceptedStreamChannel):
    name = "unix-stream"
    summary = "a connected AF_UNIX stream socket, named in the runtime dir (unix(7)); framed"
    path: Path | None = None  # the listening socket's file, while the channel exists

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self.path = endpoint_path(self.name)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            bind_private(listener, self.path)
        except OSError as exc:
            listener.close()
            client.close()
            raise ChannelError(self.name, f"bind {self.path}: {exc.strerror}") from exc
        self._connect(listener, client, str(self.path))

    def _remove(self) -> None:
        super()._remove()
        remove_endpoint(self.path)


class _DgramEnd(PayloadEnd):
    """One datagram socket, connected to the other end's: send and recv move whole messages."""

    def __init__(self, channel: str, sock: socket.socket) -> None:
        self._channel = channel
        self._sock = sock

    def send(self, data: memoryview) -> None:
        try:
            self._sock.send(data)  # one datagram, copied whole into one sk_buff
        except ConnectionRefusedError as exc:  # the connected peer socket is closed
            raise PeerDiedError(self._channel, "peer socket is gone (ECONNREFUSED)") from exc
        except OSError as exc:
            raise ChannelError(self._channel, f"send: {exc.strerror}") from exc

    def recv_into(self, buf: memoryview) -> int:
        try:
            # MSG_TRUNC: return the datagram's real length even if buf was too short for it.
            n = self._sock.recv_into(buf, len(buf), socket.MSG_TRUNC)
        except OSError as exc:
            raise ChannelError(self._channel, f"recv: {exc.strerror}") from exc
        if n > len(buf):
            raise ChannelError(self._channel, f"datagram of {n} bytes truncated to {len(buf)}")
        return n

    def _close(self) -> None:
        self._sock.close()


class UnixDgramChannel(Channel):
    name = "unix-dgram"
    summary = "two AF_UNIX datagram sockets, named and connected (unix(7)); one message each"
    payload = True
    paths: tuple[Path, ...] = ()  # the two socket files, while the channel exists

    @classmethod
    def max_message_size(cls) -> int:
        """``2 * net.core.wmem_max - 32``, and no more than the kernel can allocate at once."""
        with open("/proc/sys/net/core/wmem_max") as f:
            wmem_max = int(f.read())
        return min(2 * wmem_max, _KMALLOC_MAX) - _DGRAM_OVERHEAD

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._socks: dict[Role, socket.socket] = {}
        limit = self.max_message_size()
        if max_size > limit:
            raise SizeNotSupportedError(
                self.name,
                f"a {max_size}-byte datagram does not fit: the largest here is {limit} bytes"
                " (2 * net.core.wmem_max - 32; raise it with sysctl -w net.core.wmem_max=N)",
            )
        self.paths = (endpoint_path(self.name), endpoint_path(self.name))
        try:
            roles: tuple[Role, Role] = ("server", "client")
            for role, path in zip(roles, self.paths, strict=True):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socks[role] = sock
                bind_private(sock, path)  # the reply address the other end connects to
            self._socks["server"].connect(str(self.paths[1]))  # send() needs no address now
            self._socks["client"].connect(str(self.paths[0]))
            for sock in self._socks.values():
                self._fit(sock, max_size + _DGRAM_OVERHEAD)
        except OSError as exc:
            self._remove()
            raise ChannelError(self.name, f"set-up: {exc.strerror}") from exc

    def _fit(self, sock: socket.socket, need: int) -> None:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= need:
            return  # never shrink the default buffer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, (need + 1) // 2)  # kernel doubles
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < need:  # capped by wmem_max
            self._remove()
            raise SizeNotSupportedError(self.name, f"SO_SNDBUF cannot reach {need} bytes")

    def open(self, role: Role) -> PayloadEnd:
        mine = self._socks.pop(role)
        if self.peer == "process":
            for other in self._socks.values():
                other.close()  # the other process's socket; our copy would keep it alive
            self._socks = {}
        return _DgramEnd(self.name, mine)

    def _remove(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks = {}
        for path in self.paths:
            remove_endpoint(path)
