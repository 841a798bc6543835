"""``unix-stream`` and ``fifo``: the daemon echoes framed messages over a byte stream.

Both carry the channels' frames (:mod:`daemonkit.channels.framing`: a 4-byte native length,
then the bytes), so the client end is the channels' :class:`FdStreamEnd`, unchanged. The daemon
reads a whole message before echoing it: echoing a 1 MiB message chunk by chunk would fill the
client's receive buffer while the client is still writing, and both would block for ever.

* ``unix-stream``: one listening ``AF_UNIX`` socket ``dk.PID.unix-stream.N`` in the runtime
  dir (0600), an accept thread, one thread per connection. Kernel path: connect(2)/accept4(2),
  then writev(2)/readv(2) on the connection: two copies per direction, through the socket's
  buffer (the sender's skb queued on the receiver).
* ``fifo``: a FIFO pair per client, made on ``open``: ``dk.PID.fifo.N`` (client to daemon) and
  ``dk.PID.fifo.M`` (back), 0600. Kernel path: mkfifo(3); open(2) on a FIFO blocks until the
  other side opens too (the rendezvous); then the pipe's read/write, two copies per direction.

Facts about ending a FIFO session: the client's death closes its descriptors, so the daemon's
read returns end-of-file (no writer left). The daemon never blocks in open(2) on a FIFO (a
client that died before opening would leave it there for ever): it opens its read end
non-blocking and the reply FIFO ``O_RDWR`` (a placeholder writer, so the client's first read
cannot see a spurious end-of-file), then waits in poll(2) for the first message, checking
every 0.5 s whether the client's control connection has closed.

Lifetime: the listening socket until the daemon stops; a FIFO pair until its client's
control connection closes; both unlinked by the daemon, or by ``daemonkit cleanup`` after a
SIGKILL.

See also: unix(7), fifo(7), pipe(7), mkfifo(3), readv(2).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import socket
import stat
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemonkit.backoff import AcceptBackoff
from daemonkit.channels._stream import FdStreamEnd
from daemonkit.channels.base import End
from daemonkit.channels.framing import FRAME_HEADER
from daemonkit.channels.socket_file import listen_private
from daemonkit.errors import ChannelError
from daemonkit.service.endpoints.base import ClientEnd, Endpoint, Session, start_thread
from daemonkit.service.limits import BYTES_IN_FLIGHT, LIMITS, Budget, uid_of
from daemonkit.service.log import log
from daemonkit.service.trust import TrustedDir, UntrustedError, peer_credentials

__all__ = ["FifoEndpoint", "StreamClientEnd", "UnixStreamEndpoint", "echo_frames"]

CONNECT_TIMEOUT_S = 5.0  # a client waits this long in a full listen backlog, then gives up
MAX_MESSAGE = 64 * 1024 * 1024  # a frame claiming more ends the session (garbage or abuse)
_POLL_S = 0.5  # how often a FIFO thread waiting for its client checks for a release


def _send_timeout(sock: socket.socket, seconds: float) -> None:
    sec = int(seconds)
    tv = struct.pack("ll", sec, int((seconds - sec) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


def _wait(fd: int, events: int, deadline: float | None) -> None:
    """poll(2) until *fd* is ready for *events*; TimeoutError once *deadline* has passed."""
    poller = select.poll()
    poller.register(fd, events)
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError("message deadline passed")
        if poller.poll(None if left is None else max(1, int(left * 1000))):
            return


def _read_exactly(fd: int, view: memoryview, deadline: float | None) -> bool:
    """Fill *view* by *deadline*; False at end-of-file (the writer is gone)."""
    got = 0
    while got < len(view):
        try:
            n = os.readv(fd, (view[got:],))
        except BlockingIOError:
            _wait(fd, select.POLLIN, deadline)
            continue
        if n == 0:
            return False
        got += n
    return True


def _write_all(fd: int, parts: list[memoryview], deadline: float) -> None:
    """Write every part by *deadline* (a client that stops reading cannot hold us longer)."""
    while parts:
        try:
            sent = os.writev(fd, parts)
        except BlockingIOError:
            _wait(fd, select.POLLOUT, deadline)
            continue
        while parts and sent >= len(parts[0]):
            sent -= len(parts.pop(0))
        if parts:
            parts[0] = parts[0][sent:]


def echo_frames(
    rfd: int, wfd: int, session: Session, budget: Budget | None = None, uid: int = -1
) -> None:
    """Echo frames from *rfd* to *wfd* until end-of-file, an error, or a broken limit.

    Both descriptors must be non-blocking. Between messages the client may stay silent as
    long as it likes; once a message has begun (its first byte), all of it must arrive, and
    its echo be taken, within ``message_deadline_s`` (see :mod:`daemonkit.service.limits`).
    The echo buffer counts against *budget* (the daemon's bytes in flight, all users and
    the client's user *uid*): a frame that would take either over ends the session, as one
    longer than :data:`MAX_MESSAGE` does.
    """
    hdr = bytearray(FRAME_HEADER.size)
    hdr_view = memoryview(hdr)
    held = 64 * 1024
    if budget is not None and not budget.take(held, uid):
        return
    buf = memoryview(bytearray(held))
    grace = LIMITS.message_deadline_s
    try:
        with contextlib.suppress(OSError):  # EPIPE/ECONNRESET/timeout: the session ends
            while True:
                _wait(rfd, select.POLLIN, None)  # idle between messages: no deadline
                deadline = time.monotonic() + grace  # the message has begun
                if not _read_exactly(rfd, hdr_view, deadline):
                    return
                (n,) = FRAME_HEADER.unpack(hdr)
                if n > MAX_MESSAGE:
                    return
                if n > len(buf):
                    if budget is not None and not budget.take(n - held, uid):
                        return
                    held = n
                    buf = memoryview(bytearray(n))  # grows once per larger size, then reused
                if not _read_exactly(rfd, buf[:n], deadline):
                    return
                _write_all(wfd, [hdr_view, buf[:n]], deadline)
                session.echoes += 1
    finally:
        if budget is not None:
            budget.give(held, uid)


class UnixStreamEndpoint(Endpoint):
    name = "unix-stream"

    _listener: socket.socket | None = None

    def start(self) -> None:
        self.path = self.held_dir / self.object_name()  # made and removed through the held dir
        self._listener = listen_private(self.path, 16)  # 0600 from its creation
        self._conns: set[socket.socket] = set()
        self.backoff = AcceptBackoff()
        self.refused = 0  # connections closed at once: over the limit, or no thread
        start_thread(self._accept_loop, f"{self.name}-accept")

    @staticmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        what = "unix-stream reply"
        sock_name = rdir.object_name(reply.get("path"), daemon_pid, "unix-stream", what)
        rdir.entry(sock_name, stat.S_IFSOCK, what)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        # A daemon that cannot accept (EMFILE) leaves its backlog full, and connect(2) would
        # sleep there for good, with Ctrl-C held off by the runner: SO_SNDTIMEO bounds it
        # (EAGAIN after CONNECT_TIMEOUT_S), and is cleared once connected.
        _send_timeout(sock, CONNECT_TIMEOUT_S)
        try:
            sock.connect(rdir.via_fd(sock_name))
            _send_timeout(sock, 0)  # 0: writes block as long as they need, as before
        except OSError as exc:
            sock.close()
            where = rdir.path / sock_name
            why = "the daemon does not accept" if isinstance(exc, BlockingIOError) else exc.strerror
            raise ChannelError("unix-stream", f"connect {where}: {why}") from exc
        fd = sock.detach()  # the end owns the descriptor from here
        return StreamClientEnd("unix-stream", fd, fd)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        backoff = self.backoff
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError as exc:
                delay = backoff.failed(exc) if self._listener is not None else None
                if delay is None:
                    return  # stop() shut the listener down
                if backoff.new_streak:
                    log(f"{self.name}: accept: {exc.strerror}; backing off")
                time.sleep(delay)  # the client waits in the listen queue meanwhile
                continue
            backoff.succeeded()
            if len(self._conns) >= LIMITS.stream_clients:
                self.refused += 1
                conn.close()  # the client reads end-of-file at once
                continue
            conn.setblocking(False)
            self._conns.add(conn)
            try:
                start_thread(functools.partial(self._serve, conn), f"{self.name}-conn")
            except ChannelError as exc:  # no thread for this client: refused, nothing kept
                self.refused += 1
                log(f"{exc}; connection refused")
                self._conns.discard(conn)
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        session = self.new_session()
        try:
            uid = peer_credentials(conn)[1]  # SO_PEERCRED: whose share this is
            echo_frames(conn.fileno(), conn.fileno(), session, BYTES_IN_FLIGHT, uid)
        finally:
            self.end_session(session)
            self._conns.discard(conn)
            conn.close()

    def counters(self) -> dict[str, Any]:
        return {
            **super().counters(),
            "refused": self.refused,
            "accept_backoffs": self.backoff.failures,
        }

    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        # The connection is the session; the client knows the directory by its name.
        return {"path": str(self.runtime_dir / self.path.name)}, lambda: None

    def stop(self) -> None:
        if self._listener is None:
            return
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept thread (EINVAL)
        self._listener.close()
        self._listener = None
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # its thread's read returns 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class FifoEndpoint(Endpoint):
    name = "fifo"

    def start(self) -> None:
        self._releases: set[Callable[[], None]] = set()

    @staticmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        # Read end first, then write end. Neither waits: the daemon already holds a writer
        # of one and a reader of the other (open(2) on a FIFO blocks only without a peer).
        what = "fifo reply"
        to_client = rdir.object_name(reply.get("to_client"), daemon_pid, "fifo", what)
        to_daemon = rdir.object_name(reply.get("to_daemon"), daemon_pid, "fifo", what)
        rfd = _open_fifo(rdir, to_client, os.O_RDONLY, what)
        try:
            wfd = _open_fifo(rdir, to_daemon, os.O_WRONLY, what)
        except BaseException:
            os.close(rfd)
            raise
        return StreamClientEnd("fifo", rfd, wfd)

    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        to_daemon = self.held_dir / self.object_name()  # through the held dir, see base.py
        to_client = self.held_dir / self.object_name()
        fds: list[int] = []
        try:
            os.mkfifo(to_daemon, 0o600)
            os.mkfifo(to_client, 0o600)
            # Neither open can block: a non-blocking read end, and O_RDWR (Linux: a FIFO
            # opened for both never waits). The O_RDWR one is a writer the client's reads
            # will find as soon as it opens: no spurious end-of-file before our real one.
            fds.append(os.open(to_daemon, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            fds.append(os.open(to_client, os.O_RDWR | os.O_CLOEXEC))
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _unlink(to_daemon, to_client)
            raise ChannelError(self.name, f"mkfifo/open: {exc.strerror}") from exc
        session = self.new_session()
        rfd, placeholder = fds
        try:
            start_thread(
                lambda: self._serve(rfd, placeholder, to_client, session, uid_of(client_pid)),
                f"{self.name}-client",
            )
        except ChannelError:  # no thread to serve it: undo everything made for this client
            self.end_session(session)
            for fd in fds:
                os.close(fd)
            _unlink(to_daemon, to_client)
            raise

        def release() -> None:
            self._releases.discard(release)
            self.end_session(session)  # a thread still waiting notices within _POLL_S
            _unlink(to_daemon, to_client)

        self._releases.add(release)
        shown = self.runtime_dir  # the client knows the directory by its name
        return {
            "to_daemon": str(shown / to_daemon.name),
            "to_client": str(shown / to_client.name),
        }, release

    def _serve(
        self, rfd: int, placeholder: int, to_client: Path, session: Session, uid: int
    ) -> None:
        """Wait for the first message, swap the O_RDWR placeholder for a write-only end, echo.

        Write-only matters: while we also hold a read end of ``to_client``, a write after the
        client died would not fail with EPIPE but block once the pipe is full.
        """
        fds = [rfd, placeholder]
        try:
            poller = select.poll()
            poller.register(rfd, select.POLLIN)
            while session.open:
                events = poller.poll(_POLL_S * 1000)
                if events and events[0][1] & select.POLLIN:
                    break
                if events:  # POLLHUP: a writer came and went without a word
                    return
            else:
                return  # released before the client showed up
            # The client's read end is open by now (it opens it before its write end).
            wfd = os.open(to_client, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            fds.append(wfd)
            os.close(placeholder)
            fds.remove(placeholder)
            echo_frames(rfd, wfd, session, BYTES_IN_FLIGHT, uid)  # both ends non-blocking
        except OSError:
            pass  # the client vanished mid-way: nothing left to serve
        finally:
            for fd in fds:
                os.close(fd)

    def stop(self) -> None:
        for release in list(getattr(self, "_releases", ())):
            release()


def _open_fifo(rdir: TrustedDir, name: str, flags: int, what: str) -> int:
    """Open the daemon's FIFO *name* in *rdir*: no symlink followed, never a regular file.

    ``O_NONBLOCK`` so that neither open can wait for a peer (the daemon already holds one);
    fstat(2) of what was opened decides, before a byte is read or written.
    """
    rdir.entry(name, stat.S_IFIFO, what)  # before open: no device is ever opened
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=rdir.fd)
    except OSError as exc:
        raise ChannelError("fifo", f"open {rdir.path / name}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode):
            raise UntrustedError(f"{what}: {rdir.path / name} is not a FIFO")
        rdir.owned(st, f"{what}: {rdir.path / name}")
        os.set_blocking(fd, True)  # from here on, plain blocking reads and writes
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlink(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class StreamClientEnd(FdStreamEnd, ClientEnd):
    """The client's framed stream end (the channels' own framing), plus its control link."""

    def _close(self) -> None:
        try:
            super()._close()  # our descriptors first: the daemon's read sees end-of-file
        finally:
            self._release_control()
