"""What ``/proc`` shows of one process: the facts daemon(7) is about, read and decoded.

A plain reader with no opinion: :mod:`daemonkit.daemon.inspect` judges what it reads, and the
daemon lesson can read the same facts through it. Each part that the kernel refuses to show
(another user's descriptors, environment or working directory need ptrace access: root, or
the same user) is left ``None`` and named in :attr:`ProcessView.unreadable` with the reason,
so that a caller can say what it could not see instead of guessing.

Facts about the files read here (proc(5)):

* ``stat``: state, ppid, process group, session, ``tty_nr`` (the controlling terminal,
  0 for none); anyone may read it.
* ``status``: ``Umask``, ``SigBlk``/``SigIgn``/``SigCgt`` (hex masks, bit N-1 for signal N),
  ``Uid``/``Gid`` (real, effective, saved, filesystem), ``Groups``, ``Cap*``, ``NSpid`` (the
  pid in each nested pid namespace, innermost last); anyone may read it.
* ``fd/N`` are magic links: readlink(2) gives ``/dev/null``, ``pipe:[INODE]``, ``socket:[INODE]``
  ...; stat(2) through them gives the open file's device and inode. ``fdinfo/N`` gives the
  ``flags`` (octal, ``O_CLOEXEC`` among them). Both need ptrace read access.
* ``environ``: the block the process was *exec'd* with (changes made later in the process do
  not show), NUL-separated; ptrace access.
* ``cgroup``: ``HIERARCHY:CONTROLLERS:PATH`` lines; the unified (``0::``) or ``name=systemd``
  path ends in the systemd unit (``.../foo.service``, ``.../session-3.scope``).
* ``/proc/locks``: one line per lock, ``N: POSIX ADVISORY WRITE PID MAJ:MIN:INODE START END``
  (major and minor in hex); the pid of an OFD lock is -1.

Kernel path: open(2)/read(2) of procfs files, readlink(2) and stat(2) of the ``fd`` links.
Lifetime: nothing is created or held; each call reads afresh.
See also: proc(5), credentials(7), capabilities(7), fcntl(2) (record locks), cgroups(7).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from daemonkit.runtime import proc_stat

__all__ = [
    "FdView",
    "Lock",
    "ProcessView",
    "descendants",
    "fd_holders",
    "locks_of",
    "read_process",
    "signal_names",
    "systemd_unit",
    "tty_name",
]

T = TypeVar("T")
_PF_KTHREAD = 0x00200000  # include/linux/sched.h; stat field 9, "flags"


@dataclass(frozen=True)
class FdView:
    """One open descriptor as ``/proc/PID/fd`` and ``fdinfo`` show it."""

    fd: int
    target: str  # readlink: a path, "pipe:[N]", "socket:[N]", "anon_inode:[eventfd]", ...
    cloexec: bool | None  # None: fdinfo not readable (closed meanwhile)
    dev: int | None = None  # st_dev / st_ino of the open file (stat through the link)
    ino: int | None = None


@dataclass(frozen=True)
class Lock:
    """One line of ``/proc/locks``."""

    kind: str  # POSIX, FLOCK, OFDLCK
    mode: str  # READ, WRITE
    pid: int  # -1 for OFD locks (they belong to an open file description)
    dev: int  # os.makedev(major, minor) of the file system
    ino: int


@dataclass
class ProcessView:
    """A process's daemon(7)-relevant state, read once; ``None`` parts are in *unreadable*."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgid: int
    sid: int
    tty_nr: int
    starttime: int  # clock ticks after boot (stat field 22): tells a reused pid apart
    kernel_thread: bool  # PF_KTHREAD in the stat flags: no user space, no daemon(7) to check
    status: dict[str, str]
    cmdline: list[str] | None = None
    fds: list[FdView] | None = None
    environ: dict[str, str] | None = None
    environ_bytes: int | None = None
    cwd: str | None = None
    cwd_dev: int | None = None
    root_dev: int | None = None
    cgroup: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # part -> why (e.g. EACCES)

    def ids(self, key: str) -> list[int]:
        """``Uid``/``Gid`` (real, effective, saved, fs) or ``Groups`` from ``status``."""
        return [int(x) for x in self.status.get(key, "").split()]

    def mask(self, key: str) -> int:
        """A hex mask from ``status`` (``SigBlk``, ``SigIgn``, ``CapEff``...), 0 if absent."""
        return int(self.status.get(key, "0"), 16)


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def read_process(pid: int) -> ProcessView:
    """Read *pid*'s view. Raises ``ProcessLookupError`` if it does not exist or has exited."""
    try:
        fields = proc_stat(pid)
        comm = Path(f"/proc/{pid}/comm").read_text().rstrip("\n")
        status = _status(pid)
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessLookupError(pid) from None
    if fields[0] in ("Z", "X"):
        raise ProcessLookupError(pid)  # exited; only its exit status waits for the parent
    view = ProcessView(
        pid=pid,
        comm=comm,
        state=fields[0],
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        tty_nr=int(fields[4]),
        starttime=int(fields[19]),
        kernel_thread=bool(int(fields[6]) & _PF_KTHREAD),
        status=status,
    )
    base = Path(f"/proc/{pid}")
    view.cmdline = _part(view, "cmdline", lambda: _cmdline(base))
    view.fds = _part(view, "fd", lambda: _fds(base))
    env = _part(view, "environ", lambda: (base / "environ").read_bytes())
    if env is not None:
        view.environ_bytes = len(env)
        pairs = (e.decode(errors="replace").partition("=") for e in env.split(b"\0") if e)
        view.environ = {k: v for k, _, v in pairs}
    view.cwd = _part(view, "cwd", lambda: os.readlink(base / "cwd"))
    if view.cwd is not None:
        view.cwd_dev = _part(view, "cwd", lambda: os.stat(base / "cwd").st_dev)
        view.root_dev = _part(view, "root", lambda: os.stat(base / "root").st_dev)
    view.cgroup = _part(view, "cgroup", lambda: (base / "cgroup").read_text().splitlines()) or []
    return view


def _part(view: ProcessView, name: str, read: Callable[[], T]) -> T | None:
    """Run *read*; a refusal (EACCES, EPERM) or a part the process lacks (a kernel thread has
    no environment: ESRCH) is recorded, not raised. A process that has vanished is."""
    try:
        return read()
    except OSError as exc:
        if not os.path.exists(f"/proc/{view.pid}"):
            raise ProcessLookupError(view.pid) from None
        why = "not shown by this kernel" if isinstance(exc, FileNotFoundError) else exc.strerror
        view.unreadable[name] = f"/proc/{view.pid}/{name}: {why}"
        return None


def _cmdline(base: Path) -> list[str]:
    raw = (base / "cmdline").read_bytes()
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


def _fds(base: Path) -> list[FdView]:
    out = []
    for name in sorted(os.listdir(base / "fd"), key=int):
        link = base / "fd" / name
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            continue  # closed between the listing and the readlink
        cloexec: bool | None = None
        with contextlib.suppress(FileNotFoundError):
            info = (base / "fdinfo" / name).read_text()
            cloexec = bool(int(info.split("flags:")[1].split()[0], 8) & os.O_CLOEXEC)
        dev = ino = None
        with contextlib.suppress(OSError):
            st = os.stat(link)  # through the magic link: the open file itself
            dev, ino = st.st_dev, st.st_ino
        out.append(FdView(int(name), target, cloexec, dev, ino))
    return out


def tty_name(tty_nr: int) -> str | None:
    """Decode ``tty_nr`` (major in bits 15-8, minor in 31-20 and 7-0); None for no terminal."""
    if tty_nr == 0:
        return None
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:  # Unix98 pty slaves
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if major == 5 and minor == 1:
        return "console"
    return f"tty {major}:{minor}"


def signal_names(mask: int) -> list[str]:
    """Names of the signals set in a ``SigBlk``/``SigIgn``-style mask (bit N-1: signal N)."""
    names = []
    for n in range(1, 65):
        if mask >> (n - 1) & 1:
            try:
                names.append(signal.Signals(n).name)
            except ValueError:
                names.append(f"SIG{n}")
    return names


def descendants(pid: int) -> set[int]:
    """Children, grandchildren... of *pid*, from ``/proc/PID/task/TID/children`` (per thread)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            with contextlib.suppress(OSError):  # the thread or process ended meanwhile
                kids = {int(p) for p in (task / "children").read_text().split()} - out
                out |= kids
                todo += kids
    return out


def fd_holders(targets: set[str], skip: set[int]) -> dict[str, list[int]]:
    """For each link text in *targets* (e.g. ``pipe:[N]``), the other pids that hold it open.

    Pids in *skip* are not looked at, nor are processes we may not look into: the answer is a
    lower bound, exact as root.
    """
    found: dict[str, list[int]] = {t: [] for t in targets}
    if not targets:
        return found
    for entry in sorted(os.listdir("/proc")):
        if not entry.isdigit() or int(entry) in skip:
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        held = {_readlink(f"{fd_dir}/{fd}") for fd in names}
        for target in targets & held:
            found[target].append(int(entry))
    return found


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def locks_of(pid: int) -> list[Lock]:
    """The record and flock locks ``/proc/locks`` attributes to *pid*."""
    out = []
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if f[1] == "->":  # a waiter blocked on the lock above it, not a holder
            continue
        if len(f) < 6 or not f[4].lstrip("-").isdigit() or int(f[4]) != pid:
            continue
        major, minor, ino = f[5].split(":")
        out.append(Lock(f[1], f[3], pid, os.makedev(int(major, 16), int(minor, 16)), int(ino)))
    return out


def systemd_unit(cgroup: list[str]) -> str | None:
    """The systemd unit (``foo.service``, ``session-3.scope``) a cgroup path ends in, if any."""
    paths = [ln.split(":", 2)[2] for ln in cgroup if ln.startswith("0::") or ":name=systemd:" in ln]
    for path in paths:
        for part in reversed(path.strip("/").split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return None
