"""The timing half of the creation lesson, run as a fresh interpreter with a controlled size.

The parent's resident size decides what ``fork(2)`` copies (its page tables), so it must not
depend on how daemonkit was started (a test runner, a shell, a report already loaded). This
script imports nothing but the standard library, pads itself to the resident size it is told
(``b"\\x01" * n`` is a memset: every page really resident), checks ``VmRSS``, and times each
way of starting something, interleaved round by round. It prints one JSON object.

Usage: ``python -I -S _creation_worker.py TARGET_RSS_BYTES ROUNDS``.

Kernel path: clone(2) (thread), fork(2) + exit_group(2) + wait4(2), execve(2), posix_spawn.
Lifetime: every thread joined and every child reaped inside the timed operation; the padding
dies with this process.
See also: fork(2), posix_spawn(3), proc(5) (``VmRSS``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable

TRUE = "/bin/true"
METHODS = ("thread", "fork", "fork+exec", "posix_spawn")


def rss() -> int:
    """This process's resident set in bytes, as the kernel counts it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS in /proc/self/status")


def _thread() -> None:
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()


def _reap(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise OSError(f"child {pid} ended with status {status:#x}")


def _fork() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # leave at once: no atexit handlers, no stdio flush
    _reap(pid)


def _fork_exec() -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(TRUE, [TRUE])  # the new program replaces the copied address space
        finally:
            os._exit(127)
    _reap(pid)


def _spawn() -> None:
    _reap(os.posix_spawn(TRUE, [TRUE], os.environ))


OPS: dict[str, Callable[[], None]] = {
    "thread": _thread,
    "fork": _fork,
    "fork+exec": _fork_exec,
    "posix_spawn": _spawn,
}


def main(target: int, rounds: int) -> dict[str, object]:
    pad = b"\x01" * max(0, target - rss())  # memset: resident, private, copied by reference
    samples: dict[str, list[int]] = {k: [] for k in METHODS}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for k in METHODS:
            t0 = clock()
            OPS[k]()
            samples[k].append(clock() - t0)
    out: dict[str, object] = {"rss": rss(), "target": target, "samples": samples}
    del pad
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
