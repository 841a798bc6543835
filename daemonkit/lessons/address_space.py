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
from typing import Any

from daemonkit.lessons._child import in_child
from daemonkit.lessons.report import Label, Table, Tick, Verdict
from daemonkit.lessons.text import Tr

__all__ = ["CLAIMS", "NAME", "run", "steps", "tables", "verdicts"]

NAME = "address-space"
CLAIMS = ("C1",)

PAGE = mmap.PAGESIZE
COW_PER_PAGE = 0.9  # minor faults per written page that count as "the kernel copied it"


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 3


def run(quick: bool, tick: Tick, pages: int | None = None) -> dict[str, Any]:
    pages = pages or (256 if quick else 4096)
    m: dict[str, Any] = {"ids": _ids()}
    tick("step.address-space.ids")
    m["thread_write"] = _thread_write()
    m["child_write"] = _child_write(pages)
    tick("step.address-space.write")
    m["fd_close"] = _fd_close()
    tick("step.address-space.fd")
    return m


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


def observations(m: dict[str, Any]) -> dict[str, bool]:
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


def verdicts(m: dict[str, Any]) -> list[Verdict]:
    obs = observations(m)
    ok = sum(obs.values())
    failed = ", ".join(k for k, v in obs.items() if not v) or "-"
    label: Label = (
        "holds" if ok == len(obs) else "does not hold" if ok <= len(obs) // 2 else "partly holds"
    )
    cw = m["child_write"]
    args = {
        "ok": ok,
        "total": len(obs),
        "failed": failed,
        "cow": COW_PER_PAGE,
        "faults": cw["write_faults"] - cw["read_faults"],
        "pages": cw["pages"],
    }
    return [Verdict("C1", label, "verdict.address-space", "threshold.address-space", args)]


def tables(m: dict[str, Any], tr: Tr) -> list[Table]:
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
