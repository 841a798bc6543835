"""Whole messages over a byte stream: the framing shared by pipes, FIFOs and stream sockets.

A byte stream has no message boundaries: a 1 MiB write to a pipe arrives as many reads of at
most the pipe's capacity (64 KiB by default, pipe(7)), and writes larger than ``PIPE_BUF``
(4096 bytes) are not atomic. So each message is sent as a 4-byte native-endian length (both
ends run on this machine) followed by the bytes, in one ``writev(2)``; the reader reads exactly
the header and then exactly that many bytes, straight into the caller's buffer (no slicing, no
new ``bytes`` objects). A zero-byte message is the header alone, so it still wakes the reader.

Reads and writes go through ``os.readv``/``os.writev`` on the raw descriptor whatever it is
(pipe, FIFO, ``AF_UNIX`` or TCP socket): the kernel path is the same ``read``/``write`` family.
"""

from __future__ import annotations

import os
import struct

from daemonkit.channels.base import PayloadEnd
from daemonkit.errors import PeerDiedError

__all__ = ["FdStreamEnd"]

_HEADER = struct.Struct("=I")


class FdStreamEnd(PayloadEnd):
    """A framed message end over a read descriptor and a write descriptor (may be the same)."""

    def __init__(self, channel: str, rfd: int, wfd: int) -> None:
        self._channel = channel
        self._rfd = rfd
        self._wfd = wfd
        self._hdr = bytearray(_HEADER.size)
        self._hdr_view = memoryview(self._hdr)

    def send(self, data: memoryview) -> None:
        header = _HEADER.pack(len(data))
        try:
            sent = os.writev(self._wfd, (header, data))
            if sent < len(header) + len(data):  # the pipe or socket buffer filled up: finish it
                if sent < len(header):
                    self._write_all(memoryview(header)[sent:])
                    sent = len(header)
                self._write_all(data[sent - len(header) :])
        except (BrokenPipeError, ConnectionResetError) as exc:  # EPIPE: no reader is left
            raise PeerDiedError(self._channel, f"peer closed its end ({exc.strerror})") from exc

    def _write_all(self, view: memoryview) -> None:
        while len(view):
            view = view[os.write(self._wfd, view) :]

    def recv_into(self, buf: memoryview) -> int:
        self._read_exactly(self._hdr_view)
        (length,) = _HEADER.unpack(self._hdr)
        if length:
            self._read_exactly(buf[:length])
        return int(length)

    def _read_exactly(self, view: memoryview) -> None:
        got = 0
        want = len(view)
        while got < want:
            try:
                n = os.readv(self._rfd, (view[got:],))
            except ConnectionResetError as exc:  # TCP: the peer died with data unread (RST)
                raise PeerDiedError(self._channel, "peer reset the connection") from exc
            if n == 0:  # every write end is closed: the peer has exited or closed
                raise PeerDiedError(self._channel, "peer closed its end (end of file)")
            got += n

    def _close(self) -> None:
        os.close(self._rfd)
        if self._wfd != self._rfd:
            os.close(self._wfd)
