"""``fifo``: two named pipes (FIFOs) in the runtime dir, one each way.

Kernel path: the same as ``pipe`` once both ends are open: ``write(2)`` copies the bytes into
the pipe's ring of pages in the kernel (64 KiB by default), ``read(2)`` copies them out; two
copies per message. The file on disk holds no data (its size stays 0): it is only a name by
which two unrelated processes find the same in-kernel pipe. Messages are framed
(:mod:`daemonkit.channels._stream`): a FIFO is a byte stream and writes above ``PIPE_BUF``
(4096 bytes) are not atomic.

Facts about opening a FIFO:

* ``open(O_RDONLY)`` blocks until some process opens the FIFO for writing, and
  ``open(O_WRONLY)`` until some process opens it for reading (fifo(7)). So both sides open
  the two FIFOs *in the same order* (to-server first, then to-client); in opposite orders each
  would wait forever for the other. ``open("client")`` therefore returns only once the
  server has opened its end: call it where a dead peer is noticed (inside ``Peer.watch``).
* Opening the read end with ``O_NONBLOCK`` would not block, but a ``read`` before any writer
  has opened the FIFO returns 0, which is indistinguishable from a writer that left: the
  blocking open is what makes end-of-file mean "the peer is gone".

Lifetime: the pipe inside lives while a descriptor refers to it, exactly like ``pipe``. The
FIFO files (``dk.PID.fifo.N``, mode 0600, in the 0700 runtime dir) are kernel-persistent
names: they stay until unlinked, which only the creator does (and ``daemonkit cleanup``
does once the owner is dead).

See also: fifo(7), mkfifo(3), pipe(7), open(2).
"""

from __future__ import annotations

import os
from pathlib import Path

from daemonkit.channels._endpoints import endpoint_path, remove_endpoint
from daemonkit.channels._stream import FdStreamEnd
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role
from daemonkit.errors import ChannelError

__all__ = ["FifoChannel"]


class FifoChannel(Channel):
    name = "fifo"
    summary = "two named pipes in the runtime dir, one each way (fifo(7)); framed"
    payload = True
    paths: tuple[Path, ...] = ()  # (to server, to client), while the channel exists

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        to_server, to_client = endpoint_path(self.name), endpoint_path(self.name)
        try:
            for path in (to_server, to_client):
                os.mkfifo(path, 0o600)  # the umask can only take bits away from 0600
                self.paths += (path,)
        except OSError as exc:
            self._remove()
            raise ChannelError(self.name, f"mkfifo {exc.filename}: {exc.strerror}") from exc

    def open(self, role: Role) -> PayloadEnd:
        to_server, to_client = self.paths
        # Same order on both sides, to-server first: the first open() of each side meets the
        # other's first. The client's opens block until the server has opened its end.
        if role == "client":
            wfd = self._open(to_server, os.O_WRONLY)
            rfd = self._open(to_client, os.O_RDONLY, close_on_error=wfd)
        else:
            rfd = self._open(to_server, os.O_RDONLY)
            wfd = self._open(to_client, os.O_WRONLY, close_on_error=rfd)
        return FdStreamEnd(self.name, rfd, wfd)

    def _open(self, path: Path, flags: int, close_on_error: int = -1) -> int:
        try:
            # O_NOFOLLOW: a symlink planted under our name is refused, not followed.
            return os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW)
        except BaseException as exc:  # also a dead peer raised by a signal handler meanwhile
            if close_on_error >= 0:
                os.close(close_on_error)  # the end opened first must not leak
            if isinstance(exc, OSError):
                raise ChannelError(self.name, f"open {path}: {exc.strerror}") from exc
            raise

    def _remove(self) -> None:
        for path in self.paths:
            remove_endpoint(path)  # ends already open keep working; the names go
