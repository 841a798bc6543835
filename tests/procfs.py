"""What /proc says about a process's children, for the tests' leak checks."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> set[int]:
    """Children of *pid*, zombies included, as the kernel lists them per thread
    (/proc/PID/task/TID/children: a child belongs to the thread that forked it)."""
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:  # the thread or the process ended meanwhile
            continue
    return kids


def descendants(pid: int) -> list[int]:
    """Children, grandchildren and so on of *pid*."""
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out
