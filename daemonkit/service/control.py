"""The control protocol: newline-delimited JSON over a Unix stream socket, one reply per line.

Requests are JSON objects with a ``cmd``: ``ping``, ``status``, ``reload``, ``open`` (an echo
endpoint's per-client objects, see :mod:`daemonkit.service.endpoints`), and the test-only
``test-stop-watchdog``. Every reply is one JSON object; a failure is ``{"error": "..."}``.

Facts about serving many clients from one thread:

* The listening socket and every connection are non-blocking and watched by one selector
  (epoll(7)); a client that connects and never writes costs a registered descriptor, nothing
  more, and is dropped after ``idle_timeout`` seconds without a complete request (unless it
  holds endpoint objects, whose lifetime is tied to the connection). Only a complete line
  counts: a client that dribbles one byte a second would otherwise hold its descriptor for
  ever.
* A request is complete at its newline; a line longer than :data:`MAX_REQUEST` (64 KiB) is
  answered with an error and the connection closed, so a client cannot make the daemon buffer
  without bound. Bytes after the limit are never read.
* Replies are queued per connection and written when the socket is writable, so a client
  that does not read its replies cannot block the loop either.

Kernel path: accept4(2) ``SOCK_NONBLOCK|SOCK_CLOEXEC``, recv(2)/send(2) on the connection
(sendmsg(2) with ``SCM_RIGHTS`` for a reply that carries a descriptor, see
:data:`PASS_FDS`), epoll_wait(2) through :mod:`selectors`.

Lifetime: a connection lives until the client closes it, idles out, or the daemon stops.

See also: unix(7) SCM_RIGHTS, epoll(7), accept4(2).
"""

from __future__ import annotations

import array
import json
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "CONTROL_SOCKET",
    "MAX_REQUEST",
    "PASS_FDS",
    "Connection",
    "ProtocolError",
    "parse_request",
]

CONTROL_SOCKET = "control.sock"  # in the runtime dir
PIDFILE_NAME = "daemonkit.pid"  # in the runtime dir, unless --pidfile names another
MAX_REQUEST = 64 * 1024
# In a reply the daemon builds (never one it parses): descriptors to send with that reply as
# SCM_RIGHTS ancillary data, popped before the reply is encoded. The connection owns them
# from then on and closes them once sent (the client has its own copies) or at its close.
PASS_FDS = "_pass_fds"
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ProtocolError(Exception):
    """A request that is not a JSON object with a string ``cmd``."""


def parse_request(line: bytes) -> dict[str, Any]:
    """The request on one line; raises ProtocolError with the reason."""
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed request: {exc}") from exc
    except RecursionError as exc:  # '[' * 30000 fits in one line; the decoder recurses per level
        raise ProtocolError("malformed request: nested too deeply") from exc
    if not isinstance(msg, dict):
        raise ProtocolError("malformed request: not a JSON object")
    if not isinstance(msg.get("cmd"), str):
        raise ProtocolError("malformed request: no 'cmd' string")
    return msg


class Connection:
    """One control client: its socket, the bytes of an unfinished request, queued replies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.peer_pid, self.peer_uid, self.peer_gid = self.credentials(sock)
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.fd_queue: list[tuple[int, list[int]]] = []  # (offset in outbuf, fds to send there)
        self.last_active = time.monotonic()
        self.closing = False  # close once the queued replies are written
        self.on_close: list[Callable[[], None]] = []  # releases per-client endpoint objects

    @staticmethod
    def credentials(sock: socket.socket) -> tuple[int, int, int]:
        """SO_PEERCRED: the pid, uid, gid of the process that connected, filled in by the
        kernel at connect(2); a client cannot claim to be someone else."""
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        pid, uid, gid = _UCRED.unpack(creds)
        return pid, uid, gid

    def receive(
        self,
        handle: Callable[[bytes], dict[str, Any]],
        too_large: Callable[[], dict[str, Any]],
    ) -> bool:
        """Read what is available, answer every complete line. False when the peer is gone."""
        try:
            data = self.sock.recv(MAX_REQUEST + 1)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False  # EOF: the client closed (or died: the kernel closed it)
        self.inbuf += data
        while (nl := self.inbuf.find(b"\n")) >= 0:
            line = bytes(self.inbuf[:nl])
            del self.inbuf[: nl + 1]
            self.last_active = time.monotonic()  # a complete request, not just a byte
            if line.strip():
                self.reply(handle(line))
        if len(self.inbuf) > MAX_REQUEST:
            self.reply(too_large())
            self.inbuf.clear()
            self.closing = True
        return True

    def reply(self, msg: dict[str, Any]) -> None:
        fds = msg.pop(PASS_FDS, None)
        if fds:
            self.fd_queue.append((len(self.outbuf), list(fds)))
        self.outbuf += json.dumps(msg).encode() + b"\n"

    def flush(self) -> bool:
        """Write queued replies as far as the socket takes them. False when the peer is gone.

        Descriptors go with the first byte of their reply (sendmsg(2) ``SCM_RIGHTS``): the
        kernel installs copies in the client at its recvmsg(2) of that byte.
        """
        try:
            while self.outbuf:
                if self.fd_queue and self.fd_queue[0][0] == 0:
                    fds = self.fd_queue[0][1]
                    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                    sent = self.sock.sendmsg([self.outbuf], rights)
                    self.fd_queue.pop(0)
                    _close_all(fds)  # in flight now: the client's copies are its own
                else:
                    end = self.fd_queue[0][0] if self.fd_queue else len(self.outbuf)
                    sent = self.sock.send(memoryview(self.outbuf)[:end])
                del self.outbuf[:sent]
                self.fd_queue = [(off - sent, fds) for off, fds in self.fd_queue]
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        return True

    def close(self) -> None:
        for release in self.on_close:
            release()
        self.on_close.clear()
        for _, fds in self.fd_queue:
            _close_all(fds)  # never sent
        self.fd_queue.clear()
        self.sock.close()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
