"""Talking to the running daemon: the control client, and (below) the echo endpoints' client ends.

The control client connects to ``control.sock`` in the runtime directory, writes one JSON
request per line and reads one JSON reply per line, with a timeout on every step, so a daemon
that is stopped (SIGSTOP) or stuck shows up as "no answer" rather than a hung command.

Kernel path: socket(2) ``AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC``, connect(2) (ENOENT: no socket
file; ECONNREFUSED: a file but nobody listening, i.e. a dead daemon's leftover), send(2),
recv(2) with ``SO_RCVTIMEO`` (socket.settimeout).

Lifetime: one connection per :class:`ControlClient`; the daemon ties per-client endpoint
objects to it and removes them when it closes (or the client dies and the kernel closes it).

See also: unix(7), :mod:`daemonkit.service.control`.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from daemonkit.channels.base import End
from daemonkit.errors import ChannelError, DaemonkitError, NotRunningError
from daemonkit.service.control import CONTROL_SOCKET

__all__ = ["ControlClient", "NoAnswerError", "open_endpoint", "request"]


class NoAnswerError(DaemonkitError):
    """The daemon's socket accepted the connection but no reply came in time (LSB status 4)."""

    exit_code = 4


class ControlClient:
    """One connection to the daemon's control socket."""

    _sock: socket.socket | None = None

    def __init__(self, runtime_dir: Path, timeout: float = 2.0) -> None:
        self.path = runtime_dir / CONTROL_SOCKET
        self.timeout = timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        # While the daemon's listen backlog is full, a blocking connect(2) on a Unix socket
        # sleeps until it accepts, for at most SO_SNDTIMEO, then fails with EAGAIN. (A Python
        # timeout would make the socket non-blocking: EAGAIN at once, however briefly full.)
        sec = int(timeout)
        sock.setsockopt(
            socket.SOL_SOCKET,
            socket.SO_SNDTIMEO,
            struct.pack("ll", sec, int((timeout - sec) * 1e6)),
        )
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise NotRunningError(f"not running (nothing listens on {self.path})") from exc
        except BlockingIOError as exc:  # the backlog stayed full: the daemon is not accepting
            sock.close()
            raise NoAnswerError(f"no answer on {self.path} within {timeout:g} s") from exc
        except OSError as exc:
            sock.close()
            raise DaemonkitError(f"control socket {self.path}: {exc.strerror}") from exc
        sock.settimeout(timeout)  # every later send and recv
        self._sock = sock
        self._buf = b""

    def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the reply (which may be ``{"error": ...}``)."""
        return self.request_raw(json.dumps(msg).encode() + b"\n")

    def request_raw(self, data: bytes) -> dict[str, Any]:
        """Send *data* as is (tests use it for malformed requests) and read one reply line."""
        assert self._sock is not None, "closed"
        try:
            self._sock.sendall(data)
            while b"\n" not in self._buf:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise DaemonkitError(f"{self.path}: the daemon closed the connection")
                self._buf += chunk
        except TimeoutError as exc:
            raise NoAnswerError(f"no answer on {self.path} within {self.timeout:g} s") from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise DaemonkitError(f"{self.path}: the daemon closed the connection") from exc
        line, self._buf = self._buf.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(runtime_dir: Path, msg: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    """One request on a fresh connection."""
    with ControlClient(runtime_dir, timeout) as client:
        return client.request(msg)


# -- the echo endpoints ----------------------------------------------------------------------


def open_endpoint(runtime_dir: Path, name: str, max_size: int) -> End:
    """Open the client end of the running daemon's echo endpoint *name*.

    *name* is one of :data:`daemonkit.service.endpoints.REGISTRY`. A payload endpoint
    (``unix-stream``, ``fifo``, ``zmq-ipc``, ``posix-shm``) returns a
    :class:`~daemonkit.channels.base.PayloadEnd`: ``send`` a message of up to *max_size*
    bytes, then ``recv_into`` a buffer of at least *max_size* bytes to get the echo; a
    notification (``signal``) a :class:`~daemonkit.channels.base.NotifyEnd`: ``post`` then
    ``wait``, no payload. The ends plug straight into
    :func:`daemonkit.bench.peer.payload_roundtrips` and
    :func:`daemonkit.bench.peer.notify_roundtrips`. The daemon is found through
    ``RUNTIME_DIR/control.sock``, as ``daemonkit status`` finds it.

    One control connection is held open for the end's whole life: the daemon creates the
    per-client objects (a FIFO pair, a shared memory segment and its semaphores) on this
    connection's ``open`` request and removes them when it closes, which the kernel also
    does if this process dies. ``End.close()`` closes the end, then that connection; it is
    idempotent. Constraints of ``signal``: the end must be used by the thread that opened it
    (SIGUSR1 is blocked there while open, and the daemon's replies are directed at it with
    tgkill(2)); the daemon serves one signal client at a time (standard signals do not queue).

    Raises :class:`~daemonkit.errors.NotRunningError` when no daemon listens,
    :class:`~daemonkit.errors.ChannelError` when the daemon refuses (unknown or disabled
    endpoint, size too large) or the end cannot be opened.
    """
    from daemonkit.service.endpoints.base import ClientEnd

    control = ControlClient(runtime_dir, timeout=5.0)
    try:
        reply = control.request(
            # tid: the thread that will wait (the signal endpoint directs its replies there)
            {
                "cmd": "open",
                "endpoint": name,
                "max_size": max_size,
                "tid": threading.get_native_id(),
            }
        )
        if "error" in reply:
            raise ChannelError(name, str(reply["error"]))
        end = _client_end(name, reply)
    except BaseException:
        control.close()
        raise
    assert isinstance(end, ClientEnd)
    end.on_closed = control.close  # closing the end lets the daemon release its objects
    return end


def _client_end(name: str, reply: dict[str, Any]) -> End:
    # Imported here: `daemonkit status` and `stop` use this module and need none of them.
    from daemonkit.service.endpoints import REGISTRY

    endpoint = REGISTRY.get(name)
    if endpoint is None:
        raise ChannelError(name, "no client for this endpoint")
    return endpoint.client_end(reply)
