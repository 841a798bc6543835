"""The one interface every IPC channel implements.

A channel is a pair of ends joined by one kernel mechanism (or, for the ``th-*`` channels, by a
thread primitive). Its life has four moments, in this order:

1. ``Channel(peer, max_size)`` runs in the creating process *before* the peer exists: it makes
   every kernel object (a pipe, a FIFO, a listening socket, a semaphore set, a segment) so
   that a forked peer inherits it or can find it by name. The creator is the owner.
2. The peer is started: a forked process or a thread (see :mod:`daemonkit.bench.peer`).
3. Each side calls ``open(role)`` in its own process or thread and gets an :class:`End`:
   ``"client"`` sends first and times the round trip; ``"server"`` echoes. In a forked peer,
   ``open`` also closes the descriptors that belong to the other role, so that a dead peer shows
   up as end-of-file instead of a reader blocked forever.
4. ``End.close()`` lets go of this side's handles; ``Channel.close()`` removes the kernel
   objects, and does so only in the creating process (a forked child never unlinks them).
   Both are idempotent.

Payload channels carry bytes: :class:`PayloadEnd` sends and receives whole messages, framing
included. Notification channels (signals, eventfd, semaphores, events) carry no data at all:
:class:`NotifyEnd` only posts and waits. The two are kept apart on purpose: a semaphore post
moves no bytes, and no code here pretends it does.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "PROCESS_AND_THREAD",
    "THREAD_ONLY",
    "Channel",
    "End",
    "NotifyEnd",
    "PayloadEnd",
    "PeerKind",
    "Role",
    "SpinWords",
]

Role = Literal["client", "server"]
PeerKind = Literal["process", "thread"]

PROCESS_AND_THREAD: frozenset[PeerKind] = frozenset({"process", "thread"})
THREAD_ONLY: frozenset[PeerKind] = frozenset({"thread"})


class End(ABC):
    """One side of a channel, used by one process or thread."""

    _closed = False

    def close(self) -> None:
        """Release this side's handles (descriptors, mappings, sockets). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    @abstractmethod
    def _close(self) -> None: ...

    def __enter__(self) -> End:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PayloadEnd(End):
    """An end that moves bytes: one ``send`` is one message, one ``recv_into`` gets it whole."""

    @abstractmethod
    def send(self, data: memoryview) -> None:
        """Send one message; returns when the kernel (or the peer's buffer) holds all of it."""

    @abstractmethod
    def recv_into(self, buf: memoryview) -> int:
        """Receive one whole message into *buf* (at least ``max_size`` long); return its length.

        Raises :class:`~daemonkit.errors.PeerDiedError` when the peer is gone (end-of-file).
        """

    def spin_words(self) -> SpinWords | None:
        """The shared views of a busy-polling end (``shm-spin``), else None: with them the
        timed loop polls and copies inline (:func:`daemonkit.bench.peer.spin_roundtrips`)."""
        return None

    def stream_fds(self) -> tuple[int, int] | None:
        """(read descriptor, write descriptor) when this end is a byte stream, else None.

        In a ping-pong of one known size both sides can drop the frame header and move exactly
        that many bytes with plain read/write calls (:func:`daemonkit.bench.peer.exact_roundtrips`);
        only byte streams can, and only when both sides agree to.
        """
        return None


@dataclass(frozen=True)
class SpinWords:
    """What a busy-polling end shares with the lean loop: its own sequence word (``out[0]``),
    the other side's (``in_[0]``), the data area, whether to yield the CPU while polling,
    and ``resync`` to call once the loop has moved the sequence words itself."""

    out: memoryview
    in_: memoryview
    data: memoryview
    yielding: bool
    resync: Callable[[], None]


class NotifyEnd(End):
    """An end that carries no data: the peer learns only *that* something happened."""

    @abstractmethod
    def post(self) -> None:
        """Wake the peer (or leave a token it will find)."""

    @abstractmethod
    def wait(self) -> None:
        """Block until the peer has posted."""


class Channel(ABC):
    """A kernel mechanism (or thread primitive) set up for one client and one peer.

    Subclasses set the class attributes and implement ``open`` and ``_remove``.
    """

    name: ClassVar[str]  # canonical CLI name, e.g. "posix-shm"
    summary: ClassVar[str]  # one line for `daemonkit channels`
    payload: ClassVar[bool]  # False for notification-only mechanisms
    peer_kinds: ClassVar[frozenset[PeerKind]] = PROCESS_AND_THREAD
    # A send must be followed by a receive: the ends share one buffer used strictly in turn
    # (shared memory), or the protocol says so (ZeroMQ REQ/REP). One-way streaming then
    # needs an empty reply per message.
    turns: ClassVar[bool] = False

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        """Create the kernel objects for a peer of kind *peer* and messages up to *max_size*.

        Raises :class:`~daemonkit.errors.SizeNotSupportedError` when *max_size* cannot be
        carried on this machine, :class:`~daemonkit.errors.ChannelError` on other failures.
        """
        self.peer = peer
        self.max_size = max_size
        self._creator = os.getpid()
        self._removed = False

    @classmethod
    def max_message_size(cls) -> int | None:
        """The largest message this channel can carry here, or None when unbounded."""
        return None

    @abstractmethod
    def open(self, role: Role) -> End:
        """Make this side's end; called in the process or thread that plays *role*."""

    def close(self) -> None:
        """Remove the kernel objects, in the creating process only. Safe to call twice."""
        if self._removed or os.getpid() != self._creator:
            return
        self._removed = True
        self._remove()

    @abstractmethod
    def _remove(self) -> None:
        """Release and unlink whatever ``__init__`` created."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
