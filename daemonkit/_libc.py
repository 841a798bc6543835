"""The C library, for the few calls Python's ``os`` and ``signal`` modules do not wrap:
tgkill(2), prctl(2), sigqueue(3), signalfd(2).

``use_errno=True`` makes ctypes save ``errno`` right after each call, before the interpreter
can overwrite it; :func:`errno_error` turns it into the ``OSError`` subclass Python itself
would raise (``ESRCH`` -> ``ProcessLookupError``, ``EPERM`` -> ``PermissionError``, ...).
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["errno_error", "libc"]

libc = ctypes.CDLL(None, use_errno=True)  # the C library this interpreter already loaded


def errno_error(call: str) -> OSError:
    """The error the last failed libc call left in ``errno``, named after *call*."""
    err = ctypes.get_errno()
    return OSError(err, f"{call}: {os.strerror(err)}")
