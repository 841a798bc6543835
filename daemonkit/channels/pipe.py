"""``pipe``: two anonymous pipes, one each way.

Kernel path: ``write(2)`` copies the bytes from the sender's buffer into the pipe's ring of
pages in the kernel (16 pages, 64 KiB, by default); ``read(2)`` copies them out into the
reader's buffer: two copies per message, and a reader blocked on an empty pipe is woken by the
write. Messages are framed (see :mod:`daemonkit.channels._stream`) because a pipe is a byte
stream and writes above ``PIPE_BUF`` (4096 bytes) are not atomic.

Lifetime: process-persistent. The pipe exists while any process holds one of its descriptors;
there is nothing to unlink. A forked peer closes the ends it does not use, so when either
process dies the other sees end-of-file (reader) or ``EPIPE`` (writer).

See also: pipe(2), pipe(7), readv(2), writev(2).
"""

from __future__ import annotations

import os

from daemonkit.channels._stream import FdStreamEnd
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError

__all__ = ["PipeChannel"]


class PipeChannel(Channel):
    name = "pipe"
    summary = "two anonymous pipes, one each way (pipe(7)); a byte stream, framed"
    payload = True

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        try:
            # O_CLOEXEC: an exec'd program must not inherit them (fork still does).
            self._to_server = os.pipe2(os.O_CLOEXEC)  # (read end, write end)
            self._to_client = os.pipe2(os.O_CLOEXEC)
        except OSError as exc:
            raise ChannelError(self.name, f"pipe2: {exc.strerror}") from exc
        self._fds = {*self._to_server, *self._to_client}

    def open(self, role: Role) -> PayloadEnd:
        if role == "client":
            rfd, wfd = self._to_client[0], self._to_server[1]
        else:
            rfd, wfd = self._to_server[0], self._to_client[1]
        if self.peer == "process":
            # Each process keeps only its own two ends: when the other process dies, the
            # last write end of our read pipe is gone and read() returns 0 (end of file).
            for fd in self._fds - {rfd, wfd}:
                os.close(fd)
            self._fds = set()
        else:
            self._fds -= {rfd, wfd}  # the end owns these now
        return FdStreamEnd(self.name, rfd, wfd)

    def _remove(self) -> None:
        for fd in self._fds:  # ends not handed out (e.g. setup failed before open)
            os.close(fd)
        self._fds = set()
