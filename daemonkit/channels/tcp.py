"""``tcp``: one TCP connection over loopback (127.0.0.1, an ephemeral port), Nagle off.

Kernel path: ``write(2)`` copies the bytes into ``sk_buff``\\ s of the sending socket; on
loopback the whole TCP/IP stack still runs (segmentation to the loopback MTU of 64 KiB,
headers, acknowledgements, checksums skipped for loopback), the packet is handed to the
receiving socket through a softirq on the same machine, and ``read(2)`` copies the bytes out:
two copies, plus the protocol work a Unix socket avoids. ``TCP_NODELAY`` disables Nagle's
algorithm, which would otherwise hold a small write back until the previous one is
acknowledged (with delayed ACKs, up to 40 ms per round trip). TCP is a byte stream, so
messages are framed (:mod:`daemonkit.channels._stream`).

Lifetime: process-persistent; nothing on the file system. The listening socket takes a port
the kernel picks from the ephemeral range (``net.ipv4.ip_local_port_range``); the client
connects at set-up (the loopback handshake completes inside the kernel, into the listen
backlog) and the server accepts when it opens its end. A peer that dies shows as end-of-file
(FIN), or as ``ECONNRESET`` if it died with bytes unread (RST). After close, the side that
closed first keeps the port pair in ``TIME_WAIT`` for a minute (``ss -tan``); no file or
kernel object is left for us to remove.

See also: tcp(7), ip(7), socket(7), listen(2), accept(2).
"""

from __future__ import annotations

import socket

from daemonkit.channels._endpoints import AcceptedStreamChannel
from daemonkit.channels.base import PeerKind
from daemonkit.errors import ChannelError

__all__ = ["TcpChannel"]

_LOOPBACK = "127.0.0.1"


class TcpChannel(AcceptedStreamChannel):
    name = "tcp"
    summary = "one TCP connection over loopback, TCP_NODELAY (tcp(7)); framed"
    port = 0  # the listening port the kernel picked

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            listener.bind((_LOOPBACK, 0))  # port 0: the kernel picks a free ephemeral port
            self.port = listener.getsockname()[1]
            self._tune(client)
        except OSError as exc:
            listener.close()
            client.close()
            raise ChannelError(self.name, f"bind {_LOOPBACK}: {exc.strerror}") from exc
        self._connect(listener, client, (_LOOPBACK, self.port))

    def _tune(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each write goes out now
