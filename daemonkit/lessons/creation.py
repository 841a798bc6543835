"""C3b: creating a process costs more than creating a thread.

Four ways to start something, each timed per operation until it is gone again:

* ``thread``: ``threading.Thread.start`` + ``join`` (clone(2) sharing the address space).
* ``fork``: ``fork(2)`` + ``_exit(2)`` in the child + ``waitpid(2)``: the kernel copies the
  parent's page tables (marking every private page copy-on-write) and tears them down again.
* ``fork+exec``: the same, the child replacing itself with ``/bin/true`` (execve(2)).
* ``posix_spawn``: glibc clones with ``CLONE_VM | CLONE_VFORK`` (no page-table copy) and execs.

Each is measured with the parent at its ordinary resident size and again after the parent
has touched 1 GiB more (``b"\\x01" * 1 GiB`` is a memset, so every page is really resident:
``VmRSS`` in ``/proc/self/status`` shows it). fork's cost grows with the page tables it copies;
posix_spawn's does not. The gigabyte is released before the lesson returns.

Kernel path: clone(2) (thread), fork(2) + exit_group(2) + wait4(2), execve(2), and
glibc's posix_spawn (clone with ``CLONE_VM | CLONE_VFORK``, then execve).
Lifetime: every thread joined and every child reaped inside the timed operation.

See also: fork(2), clone(2), posix_spawn(3), vfork(2), proc(5) (``VmRSS``).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from daemonkit.errors import DaemonkitError
from daemonkit.lessons.report import Table, Tick, Verdict
from daemonkit.lessons.text import Tr, fmt_ns

__all__ = ["CLAIMS", "NAME", "run", "steps", "tables", "verdicts"]

NAME = "creation"
CLAIMS = ("C3b",)

GiB = 1 << 30
TRUE = "/bin/true"
METHODS = ("thread", "fork", "fork+exec", "posix_spawn")
MORE = 1.5  # process method / thread, per operation, that counts as "costs more"


def _noop() -> None:
    pass


def _thread() -> None:
    t = threading.Thread(target=_noop)
    t.start()
    t.join()


def _reap(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise DaemonkitError(f"creation lesson: child {pid} ended with status {status:#x}")


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


def rss() -> int:
    """This process's resident set in bytes, as the kernel counts it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise DaemonkitError("no VmRSS in /proc/self/status")


def _quantiles(samples: list[int]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=10, method="inclusive")
    return {"median": statistics.median(samples), "p10": q[0], "p90": q[-1], "n": len(samples)}


def _time_all(n: int) -> dict[str, Any]:
    """Per-operation times of every method, interleaved round by round."""
    samples: dict[str, list[int]] = {k: [] for k in METHODS}
    clock = time.perf_counter_ns
    for _ in range(n):
        for k in METHODS:
            op = OPS[k]
            t0 = clock()
            op()
            samples[k].append(clock() - t0)
    return {k: {**_quantiles(v), "samples": v} for k, v in samples.items()}


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 2


def run(quick: bool, tick: Tick, n: int | None = None, big: int = GiB) -> dict[str, Any]:
    n_small = n or (15 if quick else 300)
    n_big = n or (8 if quick else 60)
    m: dict[str, Any] = {"sizes": []}
    m["sizes"].append({"rss": rss(), **_time_all(n_small)})
    tick("step.creation.small")
    ballast = b"\x01" * big  # memset: every page touched, resident
    try:
        m["sizes"].append({"rss": rss(), **_time_all(n_big)})
    finally:
        del ballast  # munmap: the gigabyte goes back to the kernel
    m["rss_after_release"] = rss()
    tick("step.creation.big")
    return m


def verdicts(m: dict[str, Any]) -> list[Verdict]:
    ratios: list[float] = []
    clear = 0
    for size in m["sizes"]:
        t = size["thread"]
        for k in METHODS[1:]:
            ratios.append(size[k]["median"] / t["median"])
            clear += size[k]["p10"] > t["p90"]  # the whole bulk above the thread's
    small, big = m["sizes"][0], m["sizes"][-1]
    more = [q >= MORE for q in ratios]
    label: Any = (
        "holds"
        if all(more) and clear == len(ratios)
        else "partly holds"
        if any(more)
        else "does not hold"
    )
    args = {
        "more": MORE,
        "fork_small": f"{small['fork']['median'] / small['thread']['median']:.1f}",
        "fork_big": f"{big['fork']['median'] / big['thread']['median']:.1f}",
        "min_ratio": f"{min(ratios):.1f}",
        "clear": clear,
        "total": len(ratios),
        "rss_small": small["rss"] >> 20,
        "rss_big": big["rss"] >> 20,
        "fork_growth": f"{big['fork']['median'] / small['fork']['median']:.1f}",
        "spawn_growth": f"{big['posix_spawn']['median'] / small['posix_spawn']['median']:.1f}",
    }
    return [Verdict("C3b", label, "verdict.creation", "threshold.creation", args)]


def tables(m: dict[str, Any], tr: Tr) -> list[Table]:
    rows = []
    for size in m["sizes"]:
        t = size["thread"]["median"]
        for k in METHODS:
            q = size[k]
            rows.append(
                [
                    f"{size['rss'] >> 20} MiB",
                    tr("cr.method." + k),
                    fmt_ns(q["median"]),
                    f"{fmt_ns(q['p10'])}–{fmt_ns(q['p90'])}",
                    f"{q['median'] / t:.1f}",
                ]
            )
    cols = ("cr.col.rss", "cr.col.method", "cr.col.median", "cr.col.p10_p90", "cr.col.ratio")
    return [Table("cr.title", cols, rows)]
