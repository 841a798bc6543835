"""Run a function in a forked child and get its result back as JSON over a pipe.

Kernel path: ``fork(2)`` gives the child a copy-on-write view of the parent's memory, so the
function sees everything the parent set up; its result travels back through a pipe (the only
way out of a separate address space), and ``waitpid(2)`` reaps the child so no zombie is left.

Lifetime: the child leaves with ``os._exit``: it must not run the parent's ``atexit`` handlers,
flush the parent's stdio buffers a second time, or unwind into the caller's ``finally`` blocks
(which would remove kernel objects the parent still owns).

See also: fork(2), _exit(2), waitpid(2), pipe(7).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

from daemonkit.errors import DaemonkitError

__all__ = ["in_child", "read_all"]


def read_all(fd: int) -> bytes:
    """Read *fd* until end of file (every write end closed)."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def in_child(fn: Callable[[], Any], *, after_fork: Callable[[int], None] | None = None) -> Any:
    """Call *fn* in a forked child and return what it returned (JSON-serializable).

    *after_fork*, if given, runs in the parent with the child's pid while the child works
    (e.g. to send it signals); the parent then waits for the child's result.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        code = 0
        try:
            os.close(r)
            out = json.dumps({"ok": fn()})
        except BaseException as exc:
            out = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            code = 1
        try:
            os.write(w, out.encode())
        finally:
            os._exit(code)
    os.close(w)
    try:
        if after_fork is not None:
            after_fork(pid)
        data = read_all(r)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # the parent is leaving: do not leave the child behind
        raise
    finally:
        os.close(r)
        os.waitpid(pid, 0)  # reap it: its exit status is in the JSON already
    if not data:
        raise DaemonkitError("experiment child died without reporting")
    msg: dict[str, Any] = json.loads(data)
    if "error" in msg:
        raise DaemonkitError(f"experiment child failed: {msg['error']}")
    return msg["ok"]
