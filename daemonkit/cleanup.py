"""Find and remove the kernel objects and runtime files daemonkit left behind.

Every object daemonkit creates carries its owner's pid (see :mod:`daemonkit.runtime`), so the
leftovers of a process that died without cleaning up (SIGKILL, power loss) can be told apart
from the objects of a run still in progress, and from everyone else's objects.

Where the kernel shows them:

* POSIX shared memory: files in ``/dev/shm`` (a tmpfs), named as given to shm_open(3);
  POSIX named semaphores live there too, as ``sem.NAME`` (sem_overview(7)).
* POSIX message queues: ``/dev/mqueue``, when the mqueue filesystem is mounted there
  (mq_overview(7)); without the mount they exist but cannot be listed.
* System V shared memory, semaphore sets and message queues: ``/proc/sysvipc/{shm,sem,msg}``,
  one line each, with key and id (what ``ipcs`` prints); they persist until removed with
  ``IPC_RMID`` or a reboot (sysvipc(7)).
* FIFOs and sockets: files in the runtime directory, named ``dk.PID.KIND.N``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from daemonkit.runtime import NAME_PREFIX, owner_of_name, owner_of_sysv_key, pid_alive

__all__ = ["KernelObject", "list_objects", "remove_object"]

_SYSV_KINDS = {"shm": "sysv-shm", "sem": "sysv-sem", "msg": "sysv-mq"}


@dataclass(frozen=True)
class KernelObject:
    """One object daemonkit made: its kind, its name (or System V id) and its owner pid."""

    kind: str  # posix-shm, posix-sem, posix-mq, sysv-shm, sysv-sem, sysv-mq, file
    name: str
    owner: int

    @property
    def owner_alive(self) -> bool:
        return pid_alive(self.owner)


def list_objects(runtime_dirs: Iterable[Path] = ()) -> list[KernelObject]:
    """Every daemonkit object visible on this machine, plus files in *runtime_dirs*."""
    found: list[KernelObject] = []
    for entry in _listdir(Path("/dev/shm")):
        kind, name = ("posix-sem", entry[4:]) if entry.startswith("sem.") else ("posix-shm", entry)
        if (owner := owner_of_name(name)) is not None:
            found.append(KernelObject(kind, "/" + name, owner))
    for entry in _listdir(Path("/dev/mqueue")):
        if (owner := owner_of_name(entry)) is not None:
            found.append(KernelObject("posix-mq", "/" + entry, owner))
    for table, kind in _SYSV_KINDS.items():
        for key, ident in _sysv_table(table):
            if (owner := owner_of_sysv_key(key)) is not None:
                found.append(KernelObject(kind, str(ident), owner))
    for rdir in runtime_dirs:
        for entry in _listdir(rdir):
            if entry.startswith(NAME_PREFIX + ".") and (owner := owner_of_name(entry)):
                found.append(KernelObject("file", str(rdir / entry), owner))
    return found


def remove_object(obj: KernelObject) -> None:
    """Remove *obj* from the kernel (or the file system). Gone already is not an error."""
    if obj.kind in ("posix-shm", "posix-sem", "posix-mq"):
        import posix_ipc

        unlink = {
            "posix-shm": posix_ipc.unlink_shared_memory,
            "posix-sem": posix_ipc.unlink_semaphore,
            "posix-mq": posix_ipc.unlink_message_queue,
        }[obj.kind]
        with contextlib.suppress(posix_ipc.ExistentialError):
            unlink(obj.name)
    elif obj.kind.startswith("sysv-"):
        import sysv_ipc

        rm = {
            "sysv-shm": sysv_ipc.remove_shared_memory,
            "sysv-sem": sysv_ipc.remove_semaphore,
            "sysv-mq": sysv_ipc.remove_message_queue,
        }[obj.kind]
        table = next(t for t, kind in _SYSV_KINDS.items() if kind == obj.kind)
        ident = int(obj.name)
        # An id is reused once its object is gone: remove it only if its key still names
        # the same owner (IPC_RMID acts on the id, whatever object now holds it).
        if any(i == ident and owner_of_sysv_key(k) == obj.owner for k, i in _sysv_table(table)):
            with contextlib.suppress(sysv_ipc.ExistentialError):
                rm(ident)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(obj.name)


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _sysv_table(table: str) -> list[tuple[int, int]]:
    """(key, id) pairs from /proc/sysvipc/TABLE; the first two columns of every kind."""
    rows: list[tuple[int, int]] = []
    try:
        with open(f"/proc/sysvipc/{table}") as f:
            next(f)  # header
            for line in f:
                key, ident = line.split()[:2]
                rows.append((int(key), int(ident)))
    except FileNotFoundError:
        pass
    return rows
