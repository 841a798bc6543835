"""Talking to the running daemon: the control client, and (below) the echo endpoints' client ends.

The control client connects to ``control.sock`` in the runtime directory, writes one JSON
request per line and reads one JSON reply per line, with a timeout on every step, so a daemon
that is stopped (SIGSTOP) or stuck shows up as "no answer" rather than a hung command.

Nothing the other end says is believed unchecked (see :mod:`daemonkit.service.trust`): the
runtime dir and ``control.sock`` must be the daemon user's and private, the listener's uid
and pid (``SO_PEERCRED``) the directory owner's and the pidfile lock holder's, and every
reply a JSON object of the expected shape; names it hands out must be its own, in its own
directory, of the expected type. A reply that fails is an :class:`UntrustedError` (one line,
exit 1), and nothing it named has been opened for writing or signalled.

Kernel path: socket(2) ``AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC``, connect(2) (ENOENT: no socket
file; ECONNREFUSED: a file but nobody listening, i.e. a dead daemon's leftover), send(2),
recv(2) with ``SO_RCVTIMEO`` (socket.settimeout); getsockopt(2) ``SO_PEERCRED``.

Lifetime: one connection per :class:`ControlClient`; the daemon ties per-client endpoint
objects to it and removes them when it closes (or the client dies and the kernel closes it).

See also: unix(7), :mod:`daemonkit.service.control`.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
import stat
import struct
import threading
from pathlib import Path
from typing import Any

from daemonkit.channels.base import End
from daemonkit.errors import ChannelError, DaemonkitError, NotRunningError
from daemonkit.service.control import CONTROL_SOCKET, PIDFILE_NAME
from daemonkit.service.trust import TrustedDir, UntrustedError, check_status, peer_credentials

__all__ = [
    "MAX_REPLY",
    "ControlClient",
    "NoAnswerError",
    "daemon_status",
    "open_endpoint",
    "request",
]

_MAX_FDS = 4  # room for descriptors per recvmsg(2); a reply carries at most one
MAX_REPLY = 1024 * 1024  # a longer line is no reply of the daemon's: refused, not buffered


class NoAnswerError(DaemonkitError):
    """The daemon's socket accepted the connection but no reply came in time (LSB status 4)."""

    exit_code = 4


class ControlClient:
    """One connection to the daemon's control socket."""

    _sock: socket.socket | None = None
    _fds: list[int]  # descriptors the daemon passed (SCM_RIGHTS) that nobody took yet
    dir: TrustedDir | None = None

    def __init__(
        self, runtime_dir: Path, timeout: float = 2.0, pidfile: Path | None = None
    ) -> None:
        self.path = runtime_dir / CONTROL_SOCKET
        self.timeout = timeout
        self._fds = []
        pidfile = runtime_dir / PIDFILE_NAME if pidfile is None else pidfile
        try:
            self.dir = held = TrustedDir(runtime_dir, pidfile)  # checked before any send
        except FileNotFoundError as exc:
            raise NotRunningError(f"not running (no runtime dir {runtime_dir})") from exc
        try:
            held.entry(CONTROL_SOCKET, stat.S_IFSOCK, "control socket")
            self._sock = self._connect(held, timeout)
            self.daemon_pid, self.daemon_uid = self._check_peer(held, pidfile)
        except FileNotFoundError as exc:
            self.close()
            raise NotRunningError(f"not running (nothing listens on {self.path})") from exc
        except BaseException:
            self.close()
            raise
        self._buf = b""

    def _connect(self, held: TrustedDir, timeout: float) -> socket.socket:
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
            # Through the held descriptor: a swapped directory cannot redirect the connect.
            sock.connect(held.via_fd(CONTROL_SOCKET))
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
        return sock

    def _check_peer(self, held: TrustedDir, pidfile: Path) -> tuple[int, int]:
        """The listener's pid and uid from the kernel (SO_PEERCRED, recorded at listen(2)):
        the uid must own the runtime dir, the pid must hold the pidfile's lock."""
        from daemonkit.daemon.pidfile import lock_holder

        assert self._sock is not None
        pid, uid, _ = peer_credentials(self._sock)
        if uid != held.uid:
            raise UntrustedError(
                f"{self.path}: the listener runs as uid {uid}, not as the runtime dir's "
                f"owner {held.uid}"
            )
        try:
            holder = lock_holder(pidfile)
        except OSError:
            holder = None  # no pidfile (or not ours to read): the uid check stands alone
        if holder is not None and holder != pid:
            raise UntrustedError(
                f"{self.path}: the listener is pid {pid}, but pid {holder} holds {pidfile}"
            )
        return pid, uid

    def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the reply (which may be ``{"error": ...}``)."""
        return self.request_raw(json.dumps(msg).encode() + b"\n")

    def request_raw(self, data: bytes) -> dict[str, Any]:
        """Send *data* as is (tests use it for malformed requests) and read one reply line."""
        assert self._sock is not None, "closed"
        try:
            # Closed unread, but it may have answered first ("out of descriptors"): read on.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._sock.sendall(data)
            while b"\n" not in self._buf:
                chunk = self._recv()
                if not chunk:
                    raise DaemonkitError(f"{self.path}: the daemon closed the connection")
                self._buf += chunk
                if len(self._buf) > MAX_REPLY and b"\n" not in self._buf:
                    raise UntrustedError(f"{self.path}: reply longer than {MAX_REPLY} bytes")
        except TimeoutError as exc:
            raise NoAnswerError(f"no answer on {self.path} within {self.timeout:g} s") from exc
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise DaemonkitError(f"{self.path}: the daemon closed the connection") from exc
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise UntrustedError(f"{self.path}: malformed reply (not JSON)") from exc
        if not isinstance(reply, dict):
            raise UntrustedError(f"{self.path}: malformed reply (not a JSON object)")
        error = reply.get("error")
        if error is not None and not isinstance(error, str):
            raise UntrustedError(f"{self.path}: malformed reply ('error' is not a string)")
        return reply

    def _recv(self) -> bytes:
        """recv(2), or recvmsg(2) keeping any descriptors the daemon passed (SCM_RIGHTS)."""
        assert self._sock is not None
        data, ancillary, flags, _ = self._sock.recvmsg(65536, socket.CMSG_SPACE(_MAX_FDS * 4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self._fds.extend(fds)  # ours now: closed with the connection unless taken
        if flags & socket.MSG_CTRUNC:
            raise UntrustedError(f"{self.path}: more descriptors than any reply carries")
        return data

    def take_fd(self) -> int | None:
        """The oldest descriptor the daemon passed and nobody took yet (the caller owns it)."""
        return self._fds.pop(0) if self._fds else None

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)  # passed but not taken (by a reply that should carry none)
        self._fds.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.dir is not None:
            self.dir.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(
    runtime_dir: Path, msg: dict[str, Any], timeout: float = 2.0, pidfile: Path | None = None
) -> dict[str, Any]:
    """One request on a fresh connection to the checked daemon (see :class:`ControlClient`)."""
    with ControlClient(runtime_dir, timeout, pidfile) as client:
        return client.request(msg)


def daemon_status(
    runtime_dir: Path, pidfile: Path | None = None, timeout: float = 2.0
) -> dict[str, Any]:
    """The daemon's ``status`` reply, checked (:func:`~daemonkit.service.trust.check_status`)."""
    with ControlClient(runtime_dir, timeout, pidfile) as client:
        return check_status(client.request({"cmd": "status"}), client.daemon_pid)


# -- the echo endpoints ----------------------------------------------------------------------


def open_endpoint(runtime_dir: Path, name: str, max_size: int, pidfile: Path | None = None) -> End:
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

    control = ControlClient(runtime_dir, timeout=5.0, pidfile=pidfile)
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
        end = _client_end(name, reply, control)
    except BaseException:
        control.close()
        raise
    assert isinstance(end, ClientEnd)
    end.on_closed = control.close  # closing the end lets the daemon release its objects
    return end


def _client_end(name: str, reply: dict[str, Any], control: ControlClient) -> End:
    """The client end for *reply*, built by the endpoint's own ``client_end``, which checks
    every field first (see :mod:`.trust`). A field that fails is an UntrustedError."""
    # Imported here: `daemonkit status` and `stop` use this module and need none of them.
    from daemonkit.service.endpoints import REGISTRY

    endpoint = REGISTRY.get(name)
    if endpoint is None:
        raise ChannelError(name, "no client for this endpoint")
    assert control.dir is not None
    if endpoint.passes_fd:  # the reply came with a descriptor (SCM_RIGHTS), e.g. a memfd
        fd = control.take_fd()
        if fd is None:
            raise UntrustedError(f"{name} reply: no descriptor came with it")
        return endpoint.client_end_with_fd(reply, control.dir, control.daemon_pid, fd)
    return endpoint.client_end(reply, control.dir, control.daemon_pid)
