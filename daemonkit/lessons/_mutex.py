"""Mutual exclusion, counted: N processes increment one counter in shared memory.

Each worker repeats ``value = counter; counter = value + 1`` on an 8-byte word of an
anonymous ``MAP_SHARED`` mapping made before the fork, so every worker sees the same physical
page. Without a lock two workers can read the same value and both write value + 1: one
increment is lost. With a POSIX semaphore (initial value 1) around the read and the write,
none is. The lost updates are ``N * increments - final value``.

Kernel path: mmap(2) ``MAP_SHARED | MAP_ANONYMOUS`` (one page shared by every worker after
fork(2)); futex(2) behind sem_wait/sem_post when the semaphore is contended.
Lifetime: the workers are started together, waited for, and killed if the parent leaves
early; the mapping goes with the processes; the semaphore's name is unlinked on every path.
See also: sem_overview(7), mmap(2), fork(2); "race condition" in any OS textbook.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct

import posix_ipc

from daemonkit.errors import DaemonkitError
from daemonkit.runtime import object_name

__all__ = ["lost_updates"]

_WORD = struct.Struct("=q")


def _run(workers: int, increments: int, locked: bool) -> int:
    """The counter's final value after *workers* processes each added *increments*."""
    shared = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_SHARED)  # one page, shared on fork
    name = object_name("sem", posix=True)
    sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, mode=0o600, initial_value=1)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pids: list[int] = []
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    os.close(go_w)
                    os.read(go_r, 1)  # start together: the race needs them side by side
                    for _ in range(increments):
                        if locked:
                            sem.acquire()  # sem_wait: one worker at a time past here
                        (value,) = _WORD.unpack_from(shared, 0)
                        _WORD.pack_into(shared, 0, value + 1)  # another may have written since
                        if locked:
                            sem.release()
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            pids.append(pid)
        os.write(go_w, b"g" * workers)
        failed = 0
        while pids:
            _, status = os.waitpid(pids[-1], 0)
            pids.pop()
            failed += not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        if failed:
            raise DaemonkitError(f"mutual-exclusion lesson: {failed} worker(s) failed")
        (final,) = _WORD.unpack_from(shared, 0)
        return int(final)
    finally:
        for pid in pids:  # only when leaving early: kill and reap what is left
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os.close(go_r)
        os.close(go_w)
        with contextlib.suppress(posix_ipc.ExistentialError):
            sem.unlink()
        sem.close()
        shared.close()


def lost_updates(workers: int, increments: int) -> dict[str, int]:
    """Increments lost without and with a semaphore, out of ``workers * increments``."""
    total = workers * increments
    return {
        "workers": workers,
        "increments": increments,
        "total": total,
        "lost_unlocked": total - _run(workers, increments, locked=False),
        "lost_locked": total - _run(workers, increments, locked=True),
    }
