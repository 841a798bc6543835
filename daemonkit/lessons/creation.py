"""C3b: creating a process costs more than creating a thread.

Four ways to start something, each timed per operation until it is gone again:

* ``thread``: ``threading.Thread.start`` + ``join`` (clone(2) sharing the address space).
* ``fork``: ``fork(2)`` + ``_exit(2)`` in the child + ``waitpid(2)``: the kernel copies the
  parent's page tables (marking every private page copy-on-write) and tears them down again.
* ``fork+exec``: the same, the child replacing itself with ``/bin/true`` (execve(2)).
* ``posix_spawn``: glibc clones with ``CLONE_VM | CLONE_VFORK`` (no page-table copy) and execs.

The timing runs in a fresh interpreter (:mod:`daemonkit.lessons._creation_worker`) padded to
a *controlled* resident size, once small (:data:`SMALL`) and once about 1 GiB (:data:`BIG`):
fork's cost grows with the page tables it copies, posix_spawn's does not, and neither then
depends on how daemonkit itself was started.

The claim is decided (:mod:`daemonkit.lessons.verdict`) on the geometric mean, over the three
process methods and both sizes, of process/thread median cost, with its bootstrap interval:
>= 1.5x holds ("costs more"), 1.1x-1.5x partly, below 1.1x does not hold.

Kernel path: clone(2) (thread), fork(2) + exit_group(2) + wait4(2), execve(2), and
glibc's posix_spawn (clone with ``CLONE_VM | CLONE_VFORK``, then execve).
Lifetime: every thread joined and every child reaped inside the timed operation; the worker
interpreter is waited for (killed if interrupted) before ``run`` returns.

See also: fork(2), clone(2), posix_spawn(3), vfork(2), proc(5) (``VmRSS``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from daemonkit.errors import DaemonkitError
from daemonkit.lessons.report import Table, Tick
from daemonkit.lessons.text import Tr, fmt_ns
from daemonkit.lessons.verdict import Bands, Decision, Verdict, ratio_of_medians

__all__ = ["CLAIMS", "NAME", "Measurements", "explain", "run", "steps", "tables", "verdicts"]

NAME = "creation"
CLAIMS = ("C3b",)

MiB, GiB = 1 << 20, 1 << 30
SMALL = 32 * MiB  # the controlled small parent
BIG = GiB  # and the large one
METHODS = ("thread", "fork", "fork+exec", "posix_spawn")
MORE = Bands(partly=1.1, holds=1.5)  # process / thread cost that counts as "costs more"
GROWS = 1.5  # fork at the big size / fork at the small one: the page tables show
_WORKER = Path(__file__).with_name("_creation_worker.py")


class Measurements(TypedDict):
    """What ``run`` hands back (JSON data): one entry per controlled size, with the worker's
    ``rss`` and ``target`` and, per method (``thread``, ``fork``, ``fork+exec``,
    ``posix_spawn``), ``median``, ``p10``, ``p90``, ``n`` and the ``samples`` in ns."""

    sizes: list[dict[str, Any]]


def _quantiles(samples: list[int]) -> dict[str, Any]:
    q = statistics.quantiles(samples, n=10, method="inclusive")
    return {
        "median": statistics.median(samples),
        "p10": q[0],
        "p90": q[-1],
        "n": len(samples),
        "samples": samples,
    }


def _timed(target: int, rounds: int) -> dict[str, Any]:
    """Run the worker padded to *target* bytes resident; its per-method timings."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(_WORKER), str(target), str(rounds)],
            capture_output=True,
            text=True,
            timeout=120,
        )  # interrupted, subprocess.run kills and reaps the worker before re-raising
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DaemonkitError(f"creation lesson: the timing interpreter failed: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DaemonkitError(f"creation lesson: the timing interpreter failed: {last}")
    got = json.loads(done.stdout)
    return {
        "rss": got["rss"],
        "target": got["target"],
        **{k: _quantiles(v) for k, v in got["samples"].items()},
    }


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 2


def run(quick: bool, tick: Tick, n: int | None = None, big: int = BIG) -> Measurements:
    n_small = n or (15 if quick else 300)
    n_big = n or (8 if quick else 60)
    m: Measurements = {"sizes": [_timed(SMALL, n_small)]}
    tick("step.creation.small")
    m["sizes"].append(_timed(big, n_big))
    tick("step.creation.big")
    return m


def verdicts(m: Measurements, facts: Mapping[str, Any]) -> list[Verdict]:
    pairs = [
        (size[k]["samples"], size["thread"]["samples"]) for size in m["sizes"] for k in METHODS[1:]
    ]
    d = Decision("c3b", ratio_of_medians(pairs), MORE, ("fork", "fork+exec", "posix_spawn"))
    small, big = m["sizes"][0], m["sizes"][-1]

    def ratio(size: Mapping[str, Any], k: str) -> float:
        return float(size[k]["median"] / size["thread"]["median"])

    figures: dict[str, Any] = {
        "ratios": [
            [f"{k} @ {size['rss'] >> 20} MiB", f"{ratio(size, k):.1f}"]
            for size in m["sizes"]
            for k in METHODS[1:]
        ],
        "rss_small": small["rss"] >> 20,
        "rss_big": big["rss"] >> 20,
        "fork_growth": f"{big['fork']['median'] / small['fork']['median']:.1f}",
        "spawn_growth": f"{big['posix_spawn']['median'] / small['posix_spawn']['median']:.1f}",
        "grows": GROWS,
    }
    return [
        Verdict(
            "C3b",
            d.label,
            "verdict.creation",
            "threshold.creation",
            figures,
            why=explain(m),
            decisions=(d,),
        )
    ]


def explain(m: Measurements) -> tuple[str, ...]:
    """Why on this machine: page tables copied by fork, none by posix_spawn (by condition)."""
    small, big = m["sizes"][0], m["sizes"][-1]
    fork = big["fork"]["median"] / small["fork"]["median"]
    spawn = big["posix_spawn"]["median"] / small["posix_spawn"]["median"]
    why: list[str] = []
    if fork >= GROWS:
        why.append("why.c3b.pagetables")  # fork grew with the resident size
    else:
        why.append("why.c3b.flat")  # it did not: copying page tables is cheap at this size
    if fork >= GROWS and spawn < GROWS:
        why.append("why.c3b.spawn")  # posix_spawn shares the address space until exec
    return tuple(why)


def tables(m: Measurements, tr: Tr) -> list[Table]:
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


# -- this lesson's words, in both languages (the same keys; a test checks it) --------

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "claim.creation": "C3b: creating a process costs more than creating a thread.",
        "method.creation": "Per operation, interleaved: thread start+join, fork+_exit+wait, "
        "fork+exec /bin/true+wait, posix_spawn /bin/true+wait, in a fresh interpreter padded to "
        "a fixed small resident size and again to about 1 GiB (fork copies page tables, "
        "posix_spawn does not); decided on the bootstrap interval of the process/thread ratio.",
        "step.creation.small": "creation: parent at the small resident size done",
        "step.creation.big": "creation: parent at about 1 GiB resident done",
        "cr.title": "Cost of creating and ending one thread or process",
        "cr.col.rss": "parent RSS",
        "cr.col.method": "method",
        "cr.col.median": "median",
        "cr.col.p10_p90": "p10–p90",
        "cr.col.ratio": "/ thread",
        "cr.method.thread": "thread start+join",
        "cr.method.fork": "fork+_exit+wait",
        "cr.method.fork+exec": "fork+exec /bin/true",
        "cr.method.posix_spawn": "posix_spawn /bin/true",
        "verdict.creation": "Process/thread cost: {ratios}. From the {rss_small} MiB parent to "
        "the {rss_big} MiB one, fork became x{fork_growth} and posix_spawn x{spawn_growth}.",
        "threshold.creation": "'costs more' is read as the ratio of median costs per operation; "
        "the parent's resident size is fixed by the experiment",
        "q.c3b": "process/thread cost of creation (geometric mean of fork, fork+exec and "
        "posix_spawn at both sizes)",
        "why.c3b.pagetables": "fork copies the parent's page tables (marking every page "
        "copy-on-write), so its cost grows with the resident size: x{fork_growth} here.",
        "why.c3b.flat": "fork grew less than x{grows} between the two sizes: on this machine "
        "copying the page tables of this much memory is cheap next to the rest of a fork.",
        "why.c3b.spawn": "posix_spawn shares the parent's memory until the exec (CLONE_VM | "
        "CLONE_VFORK), so it copies no page tables and stays flat (x{spawn_growth}).",
    },
    "zh": {
        "claim.creation": "C3b：创建进程的开销大于创建线程。",
        "method.creation": "逐次计时、交错进行：线程 start+join、fork+_exit+wait、fork+exec "
        "/bin/true+wait、posix_spawn /bin/true+wait；在一个新启动的解释器中进行，先把常驻内存填充"
        "到固定的较小值，再填充到约 1 GiB（fork 要复制页表，posix_spawn 不需要）；按进程与线程开"
        "销之比的自助法置信区间下结论。",
        "step.creation.small": "creation：父进程常驻内存较小时完成",
        "step.creation.big": "creation：父进程常驻约 1 GiB 时完成",
        "cr.title": "创建并结束一个线程或进程的开销",
        "cr.col.rss": "父进程常驻内存",
        "cr.col.method": "方式",
        "cr.col.median": "中位数",
        "cr.col.p10_p90": "p10–p90",
        "cr.col.ratio": "/ 线程",
        "cr.method.thread": "线程 start+join",
        "cr.method.fork": "fork+_exit+wait",
        "cr.method.fork+exec": "fork+exec /bin/true",
        "cr.method.posix_spawn": "posix_spawn /bin/true",
        "verdict.creation": "进程与线程的开销之比：{ratios}。父进程从 {rss_small} MiB 增大到 "
        "{rss_big} MiB，fork 的开销变为 {fork_growth} 倍，posix_spawn 变为 {spawn_growth} 倍。",
        "threshold.creation": "“开销更大”按每次操作开销中位数之比判断；父进程的常驻内存大小由实验"
        "固定",
        "q.c3b": "创建进程与创建线程的开销之比（fork、fork+exec、posix_spawn 在两种大小下的几何平"
        "均）",
        "why.c3b.pagetables": "fork 要复制父进程的页表（并把每一页标为写时复制），所以开销随常驻"
        "内存增长：本机为 {fork_growth} 倍。",
        "why.c3b.flat": "两种大小之间 fork 的增长不到 {grows} 倍：在本机上，为这么多内存复制页"
        "表，与 fork 的其他开销相比并不算贵。",
        "why.c3b.spawn": "posix_spawn 在 exec 之前与父进程共享内存（CLONE_VM | CLONE_VFORK），不"
        "复制页表，所以开销基本不变（{spawn_growth} 倍）。",
    },
}
