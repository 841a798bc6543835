"""``eventfd``: two eventfd counters, one each way; notification only.

Notification only (``payload = False``): an eventfd is a 64-bit counter in the kernel, not a
buffer. ``post`` adds 1 to the peer's counter, ``wait`` blocks until our counter is non-zero
and takes it back to 0; no message bytes move.

Kernel path: ``write(2)`` of an 8-byte integer adds it to the counter and wakes a reader
sleeping on the eventfd's wait queue; ``read(2)`` returns the counter (8 bytes) and resets it.
It is the lightest wake-up the kernel offers through a descriptor (no pipe buffer, no
socket), and, being a descriptor, it works with ``poll``/``epoll`` (libzmq uses one per
socket for exactly this). Without ``EFD_SEMAPHORE`` several posts before a wait add up and
are taken as one; in ping-pong only one is outstanding.

Lifetime: process-persistent, anonymous; it exists while a descriptor refers to it, nothing
to unlink. A forked peer inherits both descriptors. A peer that dies does *not* wake a
reader (there is no end-of-file on an eventfd): the runner's SIGCHLD watch interrupts the
blocked ``read``.

See also: eventfd(2), read(2), write(2), epoll(7).
"""

from __future__ import annotations

import os

from daemonkit.channels.base import Channel, NotifyEnd, PeerKind, Role
from daemonkit.errors import ChannelError

__all__ = ["EventfdChannel"]


class _EventfdEnd(NotifyEnd):
    def __init__(self, wait_fd: int, post_fd: int) -> None:
        self._wait_fd = wait_fd
        self._post_fd = post_fd

    def post(self) -> None:
        os.eventfd_write(self._post_fd, 1)  # counter += 1; the peer's read() wakes

    def wait(self) -> None:
        os.eventfd_read(self._wait_fd)  # sleeps while the counter is 0, then resets it

    def _close(self) -> None:
        os.close(self._wait_fd)
        os.close(self._post_fd)


class EventfdChannel(Channel):
    name = "eventfd"
    summary = "two eventfd counters, one each way (eventfd(2)); no payload"
    payload = False
    _fds: tuple[int, ...] = ()  # (to server, to client); class default for a failed __init__

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        try:
            for _ in range(2):
                self._fds += (os.eventfd(0, os.EFD_CLOEXEC),)  # counter starts at 0
        except OSError as exc:
            self._remove()
            raise ChannelError(self.name, f"eventfd: {exc.strerror}") from exc

    def open(self, role: Role) -> NotifyEnd:
        to_server, to_client = self._fds
        wait_fd, post_fd = (to_client, to_server) if role == "client" else (to_server, to_client)
        if self.peer == "thread":
            # Both ends live in this process and would share the two descriptors: each end
            # gets its own duplicates (same counters), so each closes exactly what it holds.
            return _EventfdEnd(os.dup(wait_fd), os.dup(post_fd))  # dup() sets O_CLOEXEC
        self._fds = ()  # a forked process has its own copies; the end closes them
        return _EventfdEnd(wait_fd, post_fd)

    def _remove(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = ()
