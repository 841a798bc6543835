"""The frame header: how a whole message crosses a byte stream on this machine.

A byte stream (pipe, FIFO, ``AF_UNIX`` or TCP stream socket) keeps no message boundaries: a
1 MiB write arrives as many reads of at most the buffer's capacity, and writes larger than
``PIPE_BUF`` are not atomic. So a message is a 4-byte native-endian unsigned length (both ends
run on this machine: no byte swapping) followed by exactly that many bytes. A zero-byte message
is the header alone, so it still wakes the reader.

The channels' stream end (:class:`daemonkit.channels._stream.FdStreamEnd`) and the daemon's
stream endpoints (:mod:`daemonkit.service.endpoints.stream`) both speak it, so the daemon's
client end is the channels' own. Frames between hosts use a big-endian header of their own
(:mod:`daemonkit.remote`).

Kernel path: none here; the header travels in the same ``writev(2)`` as the bytes.

Lifetime: a constant.

See also: pipe(7) (``PIPE_BUF``, capacity), unix(7), writev(2).
"""

from __future__ import annotations

import struct

__all__ = ["FRAME_HEADER"]

FRAME_HEADER = struct.Struct("=I")  # the message length in bytes, native byte order, 4 bytes
