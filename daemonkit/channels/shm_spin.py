"""``shm-spin``: two processes busy-polling sequence numbers in shared memory.

Kernel path: none per message. The segment is made as for ``posix-shm`` (``shm_open(3)``,
``fallocate(2)``, ``mmap(2)``; a forked peer inherits the mapping); after that, ``send`` copies
the message into the shared buffer, stores its length, then increments its sequence word;
``recv_into`` polls the other side's sequence word in a loop until it moves, then copies the
message out. No system call, no context switch, no wake-up: the floor under every other
channel, which shows what the kernel's wake-up costs. The price is a CPU burnt the whole time
each side waits, which the bench's CPU columns show (about one CPU-second per second per side).
Layout: :mod:`daemonkit.channels.shm_layout` (sequence words on their own cache lines).

Facts about why this is correct on x86-64, and only there:

* x86-64 keeps *total store order* (TSO): a CPU's stores become visible to the others in the
  order it made them, and its loads are not reordered with older loads. The sender writes the
  data, then the length, then the sequence word; a receiver that sees the new sequence word
  therefore sees that data and length. On weakly ordered CPUs (ARM, POWER, RISC-V) the stores
  may become visible out of order and a fence would be needed, which Python cannot issue: the
  channel refuses to run there (the case is *skipped*, saying why).
* Each sequence word is an aligned 8-byte integer read and written whole by one ``mov``
  (a ``memoryview`` cast to ``Q`` loads and stores it with one aligned 8-byte copy): no torn
  value is ever seen. Only its owner writes it, so no atomic read-modify-write is needed.
* The data stores and the sequence store are made by separate calls of the interpreter, which
  the C compiler cannot reorder across.

Facts about sharing a CPU:

* A poller that shares its CPU with the side it waits for would burn its whole time slice
  (milliseconds) before the other side could run. Each side records the CPUs it may run on in
  the segment when it opens; unless the two sets are disjoint (``--cpu split``), the waiting
  side calls ``sched_yield(2)`` on every poll, handing the CPU over at once (a system call per
  poll, but no sleep and no wake-up).

Lifetime: kernel-persistent until ``shm_unlink``, as ``posix-shm``: ``/dev/shm/dk.PID.shm-spin.N``
is unlinked by the creator's ``Channel.close()``, or by ``daemonkit cleanup`` after a crash.
Process peers only: two threads of one process take turns on the GIL, which a poller holds for
its whole switch interval (5 ms).

See also: shm_overview(7), mmap(2), sched_yield(2); Intel SDM vol. 3, 8.2 "Memory ordering".
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable

import posix_ipc

from daemonkit.channels._ipc import LocalHandles
from daemonkit.channels.base import Channel, PayloadEnd, PeerKind, Role, SpinWords
from daemonkit.channels.posix_shm import map_new_segment
from daemonkit.channels.shm_layout import (
    SPIN_CPUS,
    SPIN_HEADER,
    SPIN_TO_CLIENT,
    SPIN_TO_SERVER,
    spin_segment_size,
    split,
)
from daemonkit.errors import NotSupportedHereError, SizeNotSupportedError
from daemonkit.runtime import object_name

__all__ = ["ShmSpinChannel"]

_TSO_MACHINES = frozenset({"x86_64", "amd64", "AMD64"})  # total store order: see the docstring


def _cpu_mask() -> int:
    """The CPUs this thread may run on, as bits (CPU N is bit N; CPUs above 63 fold over)."""
    mask = 0
    for cpu in os.sched_getaffinity(0):
        mask |= 1 << (cpu % 64)
    return mask


class _SpinEnd(PayloadEnd):
    """Publishes by bumping its own sequence word, waits by polling the other's."""

    def __init__(self, channel: str, view: memoryview, role: Role, handles: LocalHandles) -> None:
        self._channel = channel
        self._words = view[:SPIN_HEADER].cast("Q")
        out, inw = (SPIN_TO_SERVER, SPIN_TO_CLIENT) if role == "client" else (
            SPIN_TO_CLIENT, SPIN_TO_SERVER)  # fmt: skip
        self._out = view[out * 8 : out * 8 + 8].cast("Q")
        self._in = view[inw * 8 : inw * 8 + 8].cast("Q")
        self._mine = SPIN_CPUS + (role != "client")  # my CPU mask word; the other's is next to it
        self._theirs = SPIN_CPUS + (role == "client")
        self._words[self._mine] = _cpu_mask()
        self._length, self._data = split(view[SPIN_HEADER:])
        self._sent = self._out[0]  # both 0 in a new segment
        self._seen = self._in[0]
        self._poll: Callable[[int], None] = self._first_poll
        self._handles = handles
        handles.end_opened()

    def send(self, data: memoryview) -> None:
        n = len(data)
        if n > len(self._data):
            raise SizeNotSupportedError(self._channel, f"{n} bytes > buffer of {len(self._data)}")
        self._data[:n] = data  # the message first...
        self._length[0] = n
        self._sent += 1
        self._out[0] = self._sent  # ...then the sequence word: TSO keeps this order

    def recv_into(self, buf: memoryview) -> int:
        self._seen += 1
        if self._in[0] != self._seen:
            self._poll(self._seen)
        n = self._length[0]
        buf[:n] = self._data[:n]
        return n

    def _may_share_cpu(self) -> bool:
        """Whether the two ends may run on one CPU (or the other has not said yet)."""
        theirs = self._words[self._theirs]
        return not theirs or bool(theirs & self._words[self._mine])

    def _first_poll(self, want: int) -> None:
        """Choose how to wait, once both sides have said where they run."""
        self._poll = self._poll_yielding if self._may_share_cpu() else self._poll_spinning
        self._poll(want)

    def spin_words(self) -> SpinWords:
        return SpinWords(self._out, self._in, self._data, self._may_share_cpu(), self._resync)

    def _resync(self) -> None:
        self._sent, self._seen = self._out[0], self._in[0]

    def _poll_spinning(self, want: int) -> None:
        inw = self._in
        while inw[0] != want:
            pass  # each read is a load of the shared cache line: no system call

    def _poll_yielding(self, want: int) -> None:
        inw, yield_ = self._in, os.sched_yield
        while inw[0] != want:
            yield_()  # the other side may need this very CPU to answer

    def _close(self) -> None:
        for v in (self._words, self._out, self._in, self._length, self._data):
            v.release()
        self._handles.end_closed()


class ShmSpinChannel(Channel):
    name = "shm-spin"
    summary = "shared memory, both sides busy-poll sequence numbers: no system call per message"
    payload = True
    turns = True  # one buffer, strictly in turn
    peer_kinds = frozenset({"process"})

    _shm_name: str | None = None  # class default: close() is safe after a failed __init__

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        machine = platform.machine()
        if machine not in _TSO_MACHINES:
            raise NotSupportedHereError(
                self.name, f"needs total store order (x86-64); this machine is {machine}"
            )
        self._handles = LocalHandles()
        name = object_name(self.name, posix=True)
        self._view = map_new_segment(self.name, name, spin_segment_size(max_size), self._handles)
        self._shm_name = name

    def open(self, role: Role) -> PayloadEnd:
        return _SpinEnd(self.name, self._view, role, self._handles)

    def _remove(self) -> None:
        if self._shm_name is not None:
            with contextlib.suppress(posix_ipc.ExistentialError):
                posix_ipc.unlink_shared_memory(self._shm_name)
            self._shm_name = None
        self._handles.channel_closed()
