"""C1: resources belong to the process, the CPU runs threads (作用 / 从属关系).

What runs, and what the kernel shows:

1. Ids: two extra threads report ``gettid()`` and ``getpid()``; ``/proc/PID/task`` lists one
   entry per thread, all under the one pid. A forked child has a pid of its own and one task.
2. A byte written by a thread is read by the main thread: one address space.
3. A forked child writes one byte in each page of a touched buffer: the parent's copy is
   unchanged. The child counts its minor page faults (``getrusage(2)`` ``ru_minflt``) during
   the writes and, as a control, during the same loop reading only (after a warm-up pass that
   absorbs the interpreter's own first-touch faults); the difference is the copy-on-write
   faults: the kernel copies a page the first time the child writes it.
4. A descriptor closed by a thread is closed for every thread (one descriptor table); closed
   in a forked child, it stays open in the parent (the child got a copy of the table).

Kernel path: clone(2) with ``CLONE_VM | CLONE_FILES`` for a thread, plain fork(2) for a child.

Lifetime: the threads are joined, the children reaped and the pipes closed before ``run``
returns; the touched buffer is freed with it.

See also: clone(2), fork(2), gettid(2), proc(5) (``/proc/PID/task``), getrusage(2).
"""

from __future__ import annotations

import mmap
import os
import resource
import threading
from collections.abc import Mapping
from typing import Any, TypedDict

from daemonkit.lessons._child import in_child
from daemonkit.lessons.report import Table, Tick
from daemonkit.lessons.text import Tr
from daemonkit.lessons.verdict import Label, Verdict

__all__ = ["CLAIMS", "NAME", "Measurements", "run", "steps", "tables", "verdicts"]

NAME = "address-space"
CLAIMS = ("C1",)

PAGE = mmap.PAGESIZE
COW_PER_PAGE = 0.9  # minor faults per written page that count as "the kernel copied it"


class Measurements(TypedDict):
    """What ``run`` hands back (JSON data)."""

    ids: dict[str, Any]  # pid, main_tid, threads [{tid, pid}], task [tids], child {pid, tid, task}
    thread_write: dict[str, int]  # written, main_reads
    child_write: dict[str, int]  # pages, read_faults, write_faults, child_sees, parent_sees
    fd_close: dict[str, bool]  # open_after_thread_close, open_after_child_close


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 3


def run(quick: bool, tick: Tick, pages: int | None = None) -> Measurements:
    pages = pages or (256 if quick else 4096)
    ids = _ids()
    tick("step.address-space.ids")
    thread_write, child_write = _thread_write(), _child_write(pages)
    tick("step.address-space.write")
    fd_close = _fd_close()
    tick("step.address-space.fd")
    return {
        "ids": ids,
        "thread_write": thread_write,
        "child_write": child_write,
        "fd_close": fd_close,
    }


def _ids() -> dict[str, Any]:
    """Thread ids and the process id as each thread sees them, and /proc/PID/task."""
    barrier = threading.Barrier(3)
    seen: list[dict[str, int]] = []

    def report() -> None:
        seen.append({"tid": threading.get_native_id(), "pid": os.getpid()})
        barrier.wait()  # stay alive until the listing below is taken
        barrier.wait()

    threads = [threading.Thread(target=report) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
        listing = sorted(int(t) for t in os.listdir(f"/proc/{os.getpid()}/task"))
        barrier.wait()
    finally:
        for t in threads:
            t.join()

    def child() -> dict[str, Any]:
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{os.getpid()}/task"))
        return {"pid": os.getpid(), "tid": threading.get_native_id(), "task": tasks}

    return {
        "pid": os.getpid(),
        "main_tid": threading.get_native_id(),
        "threads": seen,
        "task": listing,
        "child": in_child(child),
    }


def _thread_write() -> dict[str, Any]:
    shared = bytearray(1)

    def write() -> None:
        shared[0] = 42  # a store to memory the main thread maps too

    t = threading.Thread(target=write)
    t.start()
    t.join()
    return {"written": 42, "main_reads": shared[0]}


def _child_write(pages: int) -> dict[str, Any]:
    buf = bytearray(pages * PAGE)
    buf[:] = b"\x01" * len(buf)  # touch every page: the parent really owns these frames

    def child() -> dict[str, Any]:
        def minflt() -> int:
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

        def read_all() -> int:
            total = 0
            for i in range(0, len(buf), PAGE):
                total += buf[i]  # read only: the page stays shared, no fault
            return total

        read_all()  # warm-up: the interpreter's own first-touch faults happen here
        before = minflt()
        total = read_all()
        read_faults = minflt() - before  # the control: the same loop, no writes
        before = minflt()
        for i in range(0, len(buf), PAGE):
            buf[i] = 2  # first write to a shared page: fault, the kernel copies it
        write_faults = minflt() - before
        return {
            "read_faults": read_faults,
            "write_faults": write_faults,
            "child_sees": buf.count(2),
            "checksum": total,
        }

    got = in_child(child)
    got["pages"] = pages
    got["parent_sees"] = buf.count(2)  # the child's bytes, as seen from the parent
    return dict(got)


def _fd_close() -> dict[str, Any]:
    def is_open(fd: int) -> bool:
        try:
            os.fstat(fd)
        except OSError:
            return False
        return True

    r, w = os.pipe()
    t = threading.Thread(target=os.close, args=(r,))  # close it in another thread
    t.start()
    t.join()
    after_thread = is_open(r)
    os.close(w)
    r2, w2 = os.pipe()
    try:
        in_child(lambda: os.close(r2))  # the child closes its copy of the descriptor
        after_child = is_open(r2)
    finally:
        os.close(r2)
        os.close(w2)
    return {"open_after_thread_close": after_thread, "open_after_child_close": after_child}


def observations(m: Measurements) -> dict[str, bool]:
    """Each prediction of the note, checked against what the kernel showed."""
    ids = m["ids"]
    cw = m["child_write"]
    tids = {t["tid"] for t in ids["threads"]} | {ids["main_tid"]}
    cow = cw["write_faults"] - cw["read_faults"]
    return {
        "one_pid_many_tids": all(t["pid"] == ids["pid"] for t in ids["threads"])
        and tids <= set(ids["task"])
        and ids["main_tid"] == ids["pid"],
        "child_own_process": ids["child"]["pid"] != ids["pid"] and len(ids["child"]["task"]) == 1,
        "thread_write_visible": m["thread_write"]["main_reads"] == m["thread_write"]["written"],
        "child_write_invisible": cw["parent_sees"] == 0 and cw["child_sees"] == cw["pages"],
        "copy_on_write_faults": cow >= COW_PER_PAGE * cw["pages"],
        "fd_shared_by_threads": not m["fd_close"]["open_after_thread_close"],
        "fd_copied_by_fork": m["fd_close"]["open_after_child_close"],
    }


def verdicts(m: Measurements, facts: Mapping[str, Any]) -> list[Verdict]:
    obs = observations(m)
    ok = sum(obs.values())
    failed = [k for k, v in obs.items() if not v]
    label: Label = (
        "holds" if ok == len(obs) else "does not hold" if ok <= len(obs) // 2 else "partly holds"
    )
    cw = m["child_write"]
    figures = {
        "ok": ok,
        "total": len(obs),
        "failed": failed,
        "cow": COW_PER_PAGE,
        "faults": cw["write_faults"] - cw["read_faults"],
        "pages": cw["pages"],
    }
    extra = ("verdict.failed",) if failed else ()
    why = ("why.c1.cow",) if obs["copy_on_write_faults"] else ()
    return [
        Verdict(
            "C1", label, "verdict.address-space", "threshold.address-space", figures, extra, why
        )
    ]


def tables(m: Measurements, tr: Tr) -> list[Table]:
    ids = m["ids"]
    id_rows = [[tr("as.main"), str(ids["pid"]), str(ids["main_tid"]), str(ids["pid"])]]
    id_rows += [
        [tr("as.thread"), str(t["pid"]), str(t["tid"]), str(ids["pid"])] for t in ids["threads"]
    ]
    c = ids["child"]
    id_rows.append([tr("as.child"), str(c["pid"]), str(c["tid"]), str(c["pid"])])
    id_table = Table(
        "as.ids.title",
        ("as.col.who", "as.col.pid", "as.col.tid", "as.col.task_of"),
        id_rows,
    )
    task_rows = [
        [str(ids["pid"]), " ".join(map(str, ids["task"]))],
        [str(c["pid"]), " ".join(map(str, c["task"]))],
    ]
    cw = m["child_write"]
    obs = observations(m)

    def yes(b: bool) -> str:
        return tr("yes") if b else tr("no")

    rows = [
        [tr("obs.one_pid_many_tids"), yes(obs["one_pid_many_tids"])],
        [tr("obs.child_own_process"), yes(obs["child_own_process"])],
        [
            tr("obs.thread_write_visible", v=m["thread_write"]["main_reads"]),
            yes(obs["thread_write_visible"]),
        ],
        [
            tr("obs.child_write_invisible", pages=cw["pages"], seen=cw["parent_sees"]),
            yes(obs["child_write_invisible"]),
        ],
        [
            tr(
                "obs.copy_on_write_faults",
                w=cw["write_faults"],
                r=cw["read_faults"],
                pages=cw["pages"],
            ),
            yes(obs["copy_on_write_faults"]),
        ],
        [tr("obs.fd_shared_by_threads"), yes(obs["fd_shared_by_threads"])],
        [tr("obs.fd_copied_by_fork"), yes(obs["fd_copied_by_fork"])],
    ]
    return [
        id_table,
        Table("as.task.title", ("as.col.pid", "as.col.tasks"), task_rows),
        Table("as.obs.title", ("as.col.observation", "as.col.as_predicted"), rows),
    ]


# -- this lesson's words, in both languages (the same keys; a test checks it) --------

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "claim.address-space": "C1 (作用 / 从属关系): a process is the unit of resource "
        "allocation with its own address space; a thread is the unit of scheduling and shares "
        "its process's resources; a thread belongs to exactly one process.",
        "method.address-space": "Two threads and a forked child report gettid/getpid and "
        "/proc/PID/task; a thread and a child each write shared memory (the child counting the "
        "minor page faults copy-on-write costs it) and close a descriptor; the parent checks "
        "what it sees afterwards.",
        "step.address-space.ids": "address-space: thread and process ids",
        "step.address-space.write": "address-space: writes by a thread and by a child",
        "step.address-space.fd": "address-space: descriptors closed by a thread and by a child",
        "as.ids.title": "Who runs: thread and process ids",
        "as.task.title": "/proc/PID/task: one entry per thread",
        "as.obs.title": "What one side sees of the other's actions",
        "as.main": "main thread",
        "as.thread": "thread",
        "as.child": "forked child",
        "as.col.who": "who",
        "as.col.pid": "getpid()",
        "as.col.tid": "gettid()",
        "as.col.task_of": "listed in /proc/PID/task of",
        "as.col.tasks": "tasks (tids)",
        "as.col.observation": "observation",
        "as.col.as_predicted": "as the note predicts",
        "obs.one_pid_many_tids": "all threads report one pid; each tid is listed in /proc/PID/task",
        "obs.child_own_process": "the child has its own pid and a single task",
        "obs.thread_write_visible": "a thread wrote 42; the main thread reads {v}",
        "obs.child_write_invisible": "the child wrote 1 byte in each of {pages} pages; the "
        "parent sees {seen} of them",
        "obs.copy_on_write_faults": "the child's writes cost {w} minor faults (reading the same "
        "pages: {r}) for {pages} pages",
        "obs.fd_shared_by_threads": "a descriptor closed by a thread is closed for the main thread",
        "obs.fd_copied_by_fork": "a descriptor closed by the child is still open in the parent",
        "verdict.address-space": "{ok} of {total} observations as the note predicts; "
        "copy-on-write: {faults} faults for {pages} pages written.",
        "threshold.address-space": "holds: all observations; does not hold: half or fewer; "
        "copy-on-write counted at >= {cow} faults per written page",
        "why.c1.cow": "The child's first write to each shared page faulted and the kernel gave "
        "it a private copy: after fork the pages are shared until one side writes.",
    },
    "zh": {
        "claim.address-space": "C1（作用 / 从属关系）：进程是资源分配的单位，有独立的地址空间；线"
        "程是调度的单位，共享所属进程的资源；一个线程只属于一个进程。",
        "method.address-space": "两个线程和一个 fork 出的子进程报告 gettid/getpid 以及 "
        "/proc/PID/task；线程和子进程各自写共享内存（子进程统计写时复制引起的轻微缺页次数）并关闭"
        "一个描述符；之后由父进程检查它看到的结果。",
        "step.address-space.ids": "address-space：线程和进程 ID",
        "step.address-space.write": "address-space：线程和子进程的写入",
        "step.address-space.fd": "address-space：线程和子进程关闭描述符",
        "as.ids.title": "谁在运行：线程与进程 ID",
        "as.task.title": "/proc/PID/task：每个线程一项",
        "as.obs.title": "一方能看到另一方的哪些操作",
        "as.main": "主线程",
        "as.thread": "线程",
        "as.child": "fork 出的子进程",
        "as.col.who": "谁",
        "as.col.pid": "getpid()",
        "as.col.tid": "gettid()",
        "as.col.task_of": "列在哪个进程的 /proc/PID/task 中",
        "as.col.tasks": "任务（tid）",
        "as.col.observation": "观察",
        "as.col.as_predicted": "与笔记预期相符",
        "obs.one_pid_many_tids": "所有线程报告同一个 pid；每个 tid 都列在 /proc/PID/task 中",
        "obs.child_own_process": "子进程有自己的 pid，且只有一个任务",
        "obs.thread_write_visible": "线程写入 42；主线程读到 {v}",
        "obs.child_write_invisible": "子进程在 {pages} 个页中各写了 1 字节；父进程看到其中 "
        "{seen} 个",
        "obs.copy_on_write_faults": "子进程的写入引起了 {w} 次轻微缺页（只读同样这些页时为 {r} "
        "次），共 {pages} 页",
        "obs.fd_shared_by_threads": "线程关闭的描述符对主线程也关闭了",
        "obs.fd_copied_by_fork": "子进程关闭的描述符在父进程中仍然打开",
        "verdict.address-space": "{total} 项观察中有 {ok} 项与笔记的预期相符；写时复制：写 "
        "{pages} 页引起 {faults} 次缺页。",
        "threshold.address-space": "成立：全部相符；不成立：一半或更少相符；每写一页缺页 ≥ {cow} "
        "次即计为写时复制",
        "why.c1.cow": "子进程第一次写每个共享页时都会缺页，内核随即为它复制出一份私有页：fork 之"
        "后父子进程共享页面，直到某一方写入为止。",
    },
}
