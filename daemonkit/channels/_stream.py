"""Whole messages over a byte stream: the framing shared by pipes, FIFOs and stream sockets.

A byte stream has no message boundaries: a 1 MiB write to a pipe arrives as many reads of at
most the pipe's capacity (64 KiB by default, pipe(7)), and writes larger than ``PIPE_BUF``
(4096 bytes) are not atomic. So each message is sent as a frame
(:data:`daemonkit.channels.framing.FRAME_HEADER`, then the bytes) in one ``writev(2)``; the
reader reads exactly the header and then exactly that many bytes, straight into the caller's
buffer (no slicing, no new ``bytes`` objects).

Reads and writes go through ``os.readv``/``os.writev`` on the raw descriptor whatever it is
(pipe, FIFO, ``AF_UNIX`` or TCP socket): the kernel path is the same ``read``/``write`` family.
"""

from __future__ import annotations

import os

from daemonkit.channels.base import PayloadEnd
from daemonkit.channels.framing import FRAME_HEADER
from daemonkit.errors import PeerDiedError

__all__ = ["FdStreamEnd", "read_rest", "write_rest"]

_HSIZE = FRAME_HEADER.size
_pack, _unpack_from = FRAME_HEADER.pack, FRAME_HEADER.unpack_from
_readv, _writev = os.readv, os.writev  # bound once: no attribute lookup per message


class FdStreamEnd(PayloadEnd):
    """A framed message end over a read descriptor and a write descriptor (may be the same)."""

    def __init__(self, channel: str, rfd: int, wfd: int) -> None:
        self._channel = channel
        self._rfd = rfd
        self._wfd = wfd
        self._hdr = bytearray(_HSIZE)
        self._hdr_view = memoryview(self._hdr)

    # The common case costs one writev and one or two readv per message and nothing else:
    # the loops that finish a partial transfer run only when the kernel returned short.

    def send(self, data: memoryview) -> None:
        n = len(data)
        try:
            sent = _writev(self._wfd, (_pack(n), data))
            if sent != _HSIZE + n:  # the pipe or socket buffer filled up: finish the rest
                self._send_rest(data, sent)
        except (BrokenPipeError, ConnectionResetError) as exc:  # EPIPE: no reader is left
            raise PeerDiedError(self._channel, f"peer closed its end ({exc.strerror})") from exc

    def _send_rest(self, data: memoryview, sent: int) -> None:
        if sent < _HSIZE:
            self._write_all(memoryview(_pack(len(data)))[sent:])
            sent = _HSIZE
        self._write_all(data[sent - _HSIZE :])

    def _write_all(self, view: memoryview) -> None:
        while len(view):
            view = view[os.write(self._wfd, view) :]

    def recv_into(self, buf: memoryview) -> int:
        rfd = self._rfd
        try:
            got = _readv(rfd, (self._hdr_view,))
            if got < _HSIZE:  # a short read (or end of file): read the rest
                self._read_exactly(self._hdr_view, got)
            length: int = _unpack_from(self._hdr)[0]
            if length:
                body = buf[:length]
                got = _readv(rfd, (body,))
                if got < length:
                    self._read_exactly(body, got)
        except ConnectionResetError as exc:  # TCP: the peer died with data unread (RST)
            raise PeerDiedError(self._channel, "peer reset the connection") from exc
        return length

    def _read_exactly(self, view: memoryview, got: int) -> None:
        """Finish reading *view*, of which *got* bytes are already in."""
        read_rest(self._channel, self._rfd, view, got)

    def stream_fds(self) -> tuple[int, int]:
        return self._rfd, self._wfd

    def _close(self) -> None:
        os.close(self._rfd)
        if self._wfd != self._rfd:
            os.close(self._wfd)


def read_rest(channel: str, fd: int, view: memoryview, got: int) -> int:
    """Finish reading *view* from *fd*, of which *got* bytes are already in; its length.

    Raises PeerDiedError at end of file (every write end closed: the peer exited or closed)
    and when the peer reset the connection.
    """
    want = len(view)
    try:
        while got < want:
            n = _readv(fd, (view[got:],))
            if n == 0:
                raise PeerDiedError(channel, "peer closed its end (end of file)")
            got += n
    except ConnectionResetError as exc:
        raise PeerDiedError(channel, "peer reset the connection") from exc
    return want


def write_rest(channel: str, fd: int, view: memoryview, sent: int) -> None:
    """Finish writing *view* to *fd*, of which *sent* bytes are already out (a signal
    handler interrupted a blocking write part-way). PeerDiedError when no reader is left."""
    try:
        while sent < len(view):
            sent += os.write(fd, view[sent:])
    except (BrokenPipeError, ConnectionResetError) as exc:  # EPIPE: no reader is left
        raise PeerDiedError(channel, f"peer closed its end ({exc.strerror})") from exc
