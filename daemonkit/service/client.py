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
from pathlib import Path
from typing import Any

from daemonkit.errors import DaemonkitError, NotRunningError
from daemonkit.service.server import CONTROL_SOCKET

__all__ = ["ControlClient", "NoAnswerError", "request"]


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
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise NotRunningError(f"not running (nothing listens on {self.path})") from exc
        except TimeoutError as exc:  # the listen backlog is full: the daemon is not accepting
            sock.close()
            raise NoAnswerError(f"no answer on {self.path} within {timeout:g} s") from exc
        except OSError as exc:
            sock.close()
            raise DaemonkitError(f"control socket {self.path}: {exc.strerror}") from exc
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
