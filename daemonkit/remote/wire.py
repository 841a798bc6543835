"""What ``daemonkit serve`` and its clients agree on: addresses, operations, framing, limits.

Facts about the two endpoints:

* ``zmq-tcp``: a ROUTER socket on ``tcp://ADDR:PORT``; clients use DEALER sockets. An echo
  is one frame, the body, and comes back as that frame (as cheap as a REQ/REP exchange, which
  adds an empty delimiter frame); anything else is two frames, an operation byte and a body.
  The ROUTER prefixes what it receives with the sender's identity frame, and routes a reply
  back by that frame.
* ``tcp``: a plain listening TCP socket on ``ADDR:TCP_PORT``. Each message is a 4-byte length
  in *network byte order* (the two hosts may differ) followed by the bytes; the server echoes
  it whole. The local ``tcp`` channel uses host order, since both its ends share one host.

*Kernel path*: the framing helpers below: ``sendmsg(2)`` of header and body together (one
system call, no concatenated copy), ``recv(2)`` into the caller's buffer; ``SO_RCVTIMEO`` /
``SO_SNDTIMEO`` make a blocking call give up (EAGAIN) without a ``poll(2)`` before each one.
*Lifetime*: none; sockets belong to the callers.
*See also*: zmq_socket(3) (ROUTER, DEALER), tcp(7), socket(7), byteorder(3).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

__all__ = [
    "FLUSH_REPLY",
    "NET_HEADER",
    "OP_FLUSH",
    "OP_INFO",
    "OP_SINK",
    "REMOTE_CHANNELS",
    "Address",
    "hwm_for",
    "parse_address",
    "recv_exactly",
    "send_frame",
    "set_timeouts",
]

OP_SINK = b"S"  # count the body, no reply (throughput mode)
OP_FLUSH = b"F"  # reply with the count and bytes of the sinks since the last flush
OP_INFO = b"I"  # reply with the server's settings and its process's context switches

NET_HEADER = struct.Struct("!I")  # the raw TCP endpoint's length prefix, big-endian
FLUSH_REPLY = struct.Struct("!QQ")  # messages, bytes

REMOTE_CHANNELS = ("zmq-tcp", "tcp")  # the channels a remote peer serves
_QUEUE_BUDGET = 64 << 20  # bytes queued per ZeroMQ connection and direction, at most


def hwm_for(max_size: int) -> int:
    """A high-water mark (messages) that keeps one queue of *max_size* messages near 64 MiB."""
    return max(16, min(1000, _QUEUE_BUDGET // max(max_size, 1)))


@dataclass(frozen=True)
class Address:
    """An IP address and a port; ``port == 0`` asks the kernel for a free one."""

    host: str
    port: int

    @property
    def zmq_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    @property
    def ipv6(self) -> bool:
        return ":" in self.host


def parse_address(text: str) -> Address:
    """``tcp://127.0.0.1:5555`` or ``tcp://[::1]:5555`` -> Address; ValueError otherwise.

    The host must be an IP address: the same address is bound (or connected) by both ZeroMQ
    and the plain socket, and no name lookup can silently pick another interface.
    """
    scheme, sep, rest = text.partition("://")
    if scheme != "tcp" or not sep:
        raise ValueError(f"{text!r} is not tcp://ADDR:PORT")
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r}: {port!r} is not a port number (0-65535)")
    return Address(str(ip), int(port))


# -- framing on a blocking TCP socket ---------------------------------------------------------


def set_timeouts(sock: socket.socket, seconds: float) -> None:
    """A recv or send blocked longer than *seconds* fails with EAGAIN (kernel-side timers)."""
    tv = struct.pack("@ll", int(seconds), int(seconds % 1 * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a small echo leaves at once


def send_frame(sock: socket.socket, header: bytes, body: memoryview) -> None:
    """Write *header* and *body* in one ``sendmsg``; finish whatever the kernel did not take."""
    sent = sock.sendmsg((header, body))
    total = len(header) + len(body)
    while sent < total:  # the socket buffer filled up (large messages, a slow link)
        if sent < len(header):
            sent += sock.send(header[sent:])
        else:
            sent += sock.send(body[sent - len(header) :])


def recv_exactly(sock: socket.socket, view: memoryview) -> bool:
    """Fill *view* from *sock*; False if the peer closed first (end of file)."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            return False
        got += n
    return True
