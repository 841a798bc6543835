"""The shared-memory buffer's layout: one length word, then the message (and shm-spin's header).

Every shared-memory channel (:mod:`~daemonkit.channels.sysv_shm`,
:mod:`~daemonkit.channels.posix_shm`) and the daemon's ``posix-shm`` endpoint
(:mod:`daemonkit.service.endpoints.shm`) hand one buffer back and forth, used strictly in
turn, laid out as::

    offset 0   length   one native unsigned 64-bit word: the message's size in bytes
    offset 8   data     the message, up to the buffer's size less 8

Facts about the length word:

* It is written by the side that owns the buffer, before it hands the turn over with a
  semaphore; the semaphore's atomic operation orders the writes, so the other side reads a
  complete length and complete data after its wait returns.
* 8 bytes keeps the data 8-byte aligned (mmap(2) and shmat(2) return page-aligned
  addresses), and holds any size a segment can have.

Kernel path: none; both sides read and write the mapped pages directly.

Lifetime: that of the segment.

See also: shm_overview(7), sysvipc(7), mmap(2).
"""

from __future__ import annotations

__all__ = [
    "LENGTH_SIZE",
    "SPIN_CPUS",
    "SPIN_HEADER",
    "SPIN_TO_CLIENT",
    "SPIN_TO_SERVER",
    "buffer_size",
    "spin_segment_size",
    "split",
]

LENGTH_SIZE = 8  # bytes of the length word at offset 0


def buffer_size(max_size: int) -> int:
    """Bytes of a buffer that holds messages of up to *max_size* bytes."""
    return LENGTH_SIZE + max_size


def split(buffer: memoryview) -> tuple[memoryview[int], memoryview]:
    """Views of *buffer* (a mapping): the length word (index it ``[0]``) and the data.

    No copies: writing ``length[0]`` or ``data[:n]`` writes the shared pages. Release both
    views before the mapping is closed.
    """
    return buffer[:LENGTH_SIZE].cast("Q"), buffer[LENGTH_SIZE:]  # Q: native unsigned 64-bit


# -- the busy-polling segment of ``shm-spin`` -------------------------------------------------
#
# Two sequence words, each alone on its 64-byte cache line (a write by one side then does not
# invalidate the line the other side polls for its own word), then each side's CPU mask, then
# the buffer above (length word and data)::
#
#     offset   0   to_server   u64: the client's message count; the server polls it
#     offset  64   to_client   u64: the server's echo count; the client polls it
#     offset 128   cpus        two u64: the CPUs the client and the server may run on (bit N)
#     offset 192   buffer      the length word and the data, as for the other channels

SPIN_TO_SERVER = 0  # word index (u64) of the client's sequence number
SPIN_TO_CLIENT = 8  # word index of the server's: 64 bytes further
SPIN_CPUS = 16  # word index of the client's CPU mask; the server's follows
SPIN_HEADER = 192  # bytes before the buffer


def spin_segment_size(max_size: int) -> int:
    """Bytes of a ``shm-spin`` segment for messages of up to *max_size* bytes."""
    return SPIN_HEADER + buffer_size(max_size)
