"""What /proc says about a process's children, for the tests' leak checks."""

from __future__ import annotations

import os
from pathlib import Path

from daemonkit.runtime import pid_alive, proc_stat


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


def in_session(sid: int, *, live_only: bool) -> list[int]:
    """Processes whose session id is *sid*; with *live_only*, zombies are left out."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = proc_stat(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == sid and (not live_only or pid_alive(int(entry))):
            found.append(int(entry))
    return found
