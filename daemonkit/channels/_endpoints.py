"""Named endpoints (FIFOs, socket files) and the listen/connect/accept set-up of stream sockets.

Facts about endpoint files:

* They live in the runtime directory (0700, checked by :func:`ensure_private_dir`), named
  ``dk.PID.KIND.N``, so that ``daemonkit cleanup`` recognises those of a dead owner.
* A socket file is made 0600 from its birth by
  :func:`daemonkit.channels.socket_file.bind_private` (the one place that says how and why);
  ``connect(2)`` to a socket file needs write permission on it, so 0600 admits only the
  owner (and root).
* Closing the last descriptor of a bound socket does not remove its file: the creator unlinks.

Facts about connecting stream sockets before anyone accepts:

* ``connect(2)`` to a listening socket completes as soon as the kernel has queued the
  connection in the listener's backlog (for TCP on loopback the handshake runs in the kernel);
  ``accept(2)`` later only takes it off the queue. So the client is connected at set-up, and
  the server accepts in its own process or thread when it opens its end.

See also: unix(7), tcp(7), listen(2), accept(2), fifo(7).
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from daemonkit.channels._stream import FdStreamEnd
from daemonkit.channels.base import Channel, PayloadEnd, Role
from daemonkit.errors import ChannelError
from daemonkit.runtime import ensure_private_dir, object_name, resolve_runtime_dir

__all__ = ["AcceptedStreamChannel", "endpoint_path", "remove_endpoint"]


def endpoint_path(kind: str) -> Path:
    """A fresh path ``RUNTIME_DIR/dk.PID.KIND.N`` for a FIFO or a socket file."""
    return ensure_private_dir(resolve_runtime_dir()) / object_name(kind)


def remove_endpoint(path: Path | None) -> None:
    """Unlink a FIFO or socket file; one already gone is not an error."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # ends already open keep working: only the name goes


class AcceptedStreamChannel(Channel):
    """A connected pair of stream sockets: the client connects at set-up, the server accepts.

    Subclasses create the listening socket and the client socket, then call :meth:`_connect`.
    """

    payload = True
    _listener: socket.socket | None = None  # class defaults: close() is safe after a failure
    _client: socket.socket | None = None

    def _connect(
        self, listener: socket.socket, client: socket.socket, address: str | tuple[str, int]
    ) -> None:
        self._listener, self._client = listener, client
        try:
            listener.listen(1)
            client.connect(address)  # queued in the backlog: returns before any accept()
        except OSError as exc:
            raise ChannelError(self.name, f"connect: {exc.strerror}") from exc

    def _tune(self, conn: socket.socket) -> None:
        """Per-connection socket options (TCP_NODELAY for TCP); nothing by default."""

    def open(self, role: Role) -> PayloadEnd:
        assert self._listener is not None and self._client is not None
        if role == "server":
            try:
                conn, _ = self._listener.accept()  # takes the queued connection
            except OSError as exc:
                raise ChannelError(self.name, f"accept: {exc.strerror}") from exc
            self._tune(conn)
            if self.peer == "process":
                # The forked peer keeps only its connection: when it dies, the kernel closes
                # it and the client's read() returns 0 (end of file).
                self._listener.close()
                self._client.close()
            fd = conn.detach()
        else:
            if self.peer == "process":
                self._listener.close()  # the peer process holds its own copy and accepts
            fd = self._client.detach()  # the end owns the descriptor now
        return FdStreamEnd(self.name, fd, fd)

    def _remove(self) -> None:
        for sock in (self._listener, self._client):
            if sock is not None:
                sock.close()  # a no-op for a socket already closed or detached
