"""``mp-pipe``, ``mp-pipe-simplex``: ``multiprocessing.Pipe``, the duplex and the one-way kind.

``multiprocessing.Pipe()`` is two things, depending on ``duplex``; each channel is named for
what it makes:

* ``mp-pipe``: ``Pipe()`` (``duplex=True``, the default) is ``socketpair(AF_UNIX,
  SOCK_STREAM)``: one connected pair of Unix stream sockets, both ways over the same pair.
* ``mp-pipe-simplex``: ``Pipe(duplex=False)`` is ``os.pipe()``: a one-way pipe, so a ping-pong
  needs two of them, one each way (like the ``pipe`` channel).

Kernel path: ``Connection.send_bytes`` frames the message itself (a 4-byte big-endian length,
then the bytes; a small message and its header are joined into one ``bytes`` object first, a
copy in user space) and writes it with ``write(2)``; ``recv_bytes_into`` reads the header and
then the body with ``read(2)`` into the caller's buffer. The kernel copies the bytes in and out
of the socket or pipe buffer, as for ``unix-stream`` and ``pipe``: what this channel adds is
the Python layer of ``multiprocessing.connection`` (its framing, its ``bytes`` objects).

Lifetime: process-persistent, as for any pipe or socketpair: nothing is named, nothing to
unlink; the objects go with the last descriptor. A forked peer closes the connections that
belong to the other side, so either side's death is seen as end-of-file (``EOFError``) or
``EPIPE`` by the other.

See also: socketpair(2), unix(7), pipe(7); ``multiprocessing.connection`` in the Python docs.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError, PeerDiedError

__all__ = ["MpPipeChannel", "MpPipeSimplexChannel"]


class _ConnectionEnd(PayloadEnd):
    """Sends on one Connection, receives on another (the same one for a duplex pipe)."""

    def __init__(self, channel: str, rx: Connection, tx: Connection) -> None:
        self._channel = channel
        self._rx = rx
        self._tx = tx
        self._send = tx.send_bytes
        self._recv = rx.recv_bytes_into

    def send(self, data: memoryview) -> None:
        try:
            self._send(data)
        except (BrokenPipeError, ConnectionResetError) as exc:  # EPIPE: no reader is left
            raise PeerDiedError(self._channel, f"peer closed its end ({exc.strerror})") from exc

    def recv_into(self, buf: memoryview) -> int:
        try:
            return self._recv(buf)
        except EOFError as exc:  # read(2) returned 0: every write end is closed
            raise PeerDiedError(self._channel, "peer closed its end (end of file)") from exc
        except ConnectionResetError as exc:
            raise PeerDiedError(self._channel, "peer reset the connection") from exc

    def _close(self) -> None:
        self._rx.close()
        if self._tx is not self._rx:
            self._tx.close()


class _MpPipeChannel(Channel):
    payload = True
    _duplex: bool

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        try:
            if self._duplex:
                a, b = multiprocessing.Pipe(duplex=True)  # socketpair(AF_UNIX, SOCK_STREAM)
                self._client, self._server = (a, a), (b, b)  # (receive on, send on)
            else:
                to_client_r, to_client_w = multiprocessing.Pipe(duplex=False)  # os.pipe()
                to_server_r, to_server_w = multiprocessing.Pipe(duplex=False)
                self._client, self._server = (to_client_r, to_server_w), (to_server_r, to_client_w)
        except OSError as exc:
            raise ChannelError(self.name, f"multiprocessing.Pipe: {exc.strerror}") from exc
        self._unused = {*self._client, *self._server}

    def open(self, role: Role) -> PayloadEnd:
        mine = self._client if role == "client" else self._server
        if self.peer == "process":
            # Keep only this side's connections: the other side's death is then end-of-file.
            for conn in self._unused - set(mine):
                conn.close()
            self._unused = set()
        else:
            self._unused -= set(mine)  # the end owns these now
        return _ConnectionEnd(self.name, *mine)

    def _remove(self) -> None:
        for conn in self._unused:  # connections not handed out (setup failed before open)
            conn.close()
        self._unused = set()


class MpPipeChannel(_MpPipeChannel):
    name = "mp-pipe"
    summary = "multiprocessing.Pipe(): a socketpair (AF_UNIX stream), its own 4-byte framing"
    _duplex = True


class MpPipeSimplexChannel(_MpPipeChannel):
    name = "mp-pipe-simplex"
    summary = "multiprocessing.Pipe(duplex=False): two os.pipe()s, one each way, its framing"
    _duplex = False
