"""Where daemonkit keeps its runtime files, and how its kernel objects are named.

Facts about runtime directories:

* A daemon's sockets, FIFOs and pidfile live in a directory only its user can enter (0700).
  Anyone who can write to that directory could replace a socket or plant a pidfile, so a
  directory that already exists is used only if it is a real directory (not a symlink), owned by
  the expected user, and not writable by group or others.
* Which directory, first found: ``--runtime-dir``; ``$DAEMONKIT_RUNTIME_DIR``; ``runtime_dir``
  in the settings file (``$DAEMONKIT_SETTINGS``, else ``$XDG_CONFIG_HOME/daemonkit/settings.toml``
  or ``~/.config/daemonkit/settings.toml``); ``$XDG_RUNTIME_DIR/daemonkit`` (a per-user tmpfs
  made by systemd-logind); ``/run/daemonkit`` for root; otherwise ``daemonkit-UID`` under the
  system temp dir. So an admin names it once, not on every call. Every command, channel and
  test asks :func:`resolve_runtime_dir`, so they all agree on it; a path that exists and is
  not a directory is refused there, as a usage error, before anything looks inside it.

Facts about names:

* Every kernel object daemonkit makes carries the prefix ``dk`` and the pid of the process that
  owns it, so ``daemonkit cleanup`` can tell its leftovers from everyone else's and remove only
  those whose owner is dead. POSIX objects (``/dev/shm``, ``/dev/mqueue``) are named
  ``/dk.PID.KIND.N``; files in the runtime dir ``dk.PID.KIND.N``; System V objects have no
  names, only 32-bit keys, so the key packs the same facts: ``0x44`` in the top byte, then the
  owner pid and a 2-bit index (see :func:`sysv_key`). A process thus has four keys. Each
  kind of object (semaphore sets, segments, queues) has its own key space in the kernel, so
  a process claims an index per kind with :func:`claim_sysv_index` and releases it after
  ``IPC_RMID``: channels opened one after another reuse keys, two open at once never collide.
* ``/dev/shm`` and ``/dev/mqueue`` are shared by every user, and pids are easy to guess: a
  name made of the pid and a counter could be created first by another user, and every
  ``O_EXCL`` create of ours would then fail (a denial of service). So ``N`` is a counter
  followed by nine random digits: unique within the process, unguessable outside it. The
  four System V keys of a pid cannot be hidden that way; when another user holds all four,
  the object is made with ``IPC_PRIVATE`` instead (see
  :func:`daemonkit.channels._ipc.create_sysv`).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import stat
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Literal

from daemonkit.errors import ConfigError, RuntimeDirError, UsageError

__all__ = [
    "NAME_PREFIX",
    "RUNTIME_DIR_ENV",
    "SYSV_KEY_BASE",
    "SysvKind",
    "claim_sysv_index",
    "ensure_private_dir",
    "object_name",
    "owner_of_name",
    "owner_of_sysv_key",
    "pid_alive",
    "proc_stat",
    "release_sysv_index",
    "resolve_runtime_dir",
    "settings_path",
    "sysv_key",
    "unsafe_dir",
]

NAME_PREFIX = "dk"
RUNTIME_DIR_ENV = "DAEMONKIT_RUNTIME_DIR"  # names the runtime dir once for every command
SYSV_KEY_BASE = 0x44000000  # top byte 'D'; keys 0x44000000..0x44FFFFFF are daemonkit's
_SYSV_PID_BITS = 22  # Linux pid_max is at most 2**22 (PID_MAX_LIMIT)
_NAME_RE = re.compile(rf"^/?{NAME_PREFIX}\.(\d+)\.")
_counter = itertools.count()
_SYSV_INDICES = 4  # the 2 low bits of a key
SysvKind = Literal["sem", "shm", "msg"]  # the kernel's three key spaces (/proc/sysvipc/KIND)
_sysv_claimed: dict[SysvKind, set[int]] = {"sem": set(), "shm": set(), "msg": set()}
_sysv_lock = threading.Lock()  # channels may be set up from several threads


def _forget_sysv_claims() -> None:
    """In a forked child: another pid means four fresh keys, and a lock no thread holds."""
    global _sysv_lock
    _sysv_lock = threading.Lock()
    for claimed in _sysv_claimed.values():
        claimed.clear()


os.register_at_fork(after_in_child=_forget_sysv_claims)


def resolve_runtime_dir(arg: Path | None = None) -> Path:
    """The runtime directory, absolute: *arg* (``--runtime-dir``) if given, else the first of
    ``$DAEMONKIT_RUNTIME_DIR``, the settings file's ``runtime_dir``, the default.

    Absolute because a daemon changes directory (daemon(7) step 11) before it uses the path.
    Nothing is created here (:func:`ensure_private_dir` does that for whoever writes into the
    directory); an existing non-directory is a :class:`UsageError` naming where it came from.
    """
    if arg is not None:
        return _a_directory(Path(arg), "--runtime-dir")
    env = os.environ.get(RUNTIME_DIR_ENV)
    if env:
        return _a_directory(Path(env), RUNTIME_DIR_ENV)
    settings = settings_path()
    configured = _settings_runtime_dir(settings)
    if configured is not None:
        return _a_directory(configured, f"runtime_dir in {settings}")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(os.path.abspath(Path(xdg) / "daemonkit"))
    if os.geteuid() == 0:
        return Path("/run/daemonkit")
    return Path(tempfile.gettempdir()).absolute() / f"daemonkit-{os.geteuid()}"


def _a_directory(path: Path, source: str) -> Path:
    path = Path(os.path.abspath(path.expanduser()))
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{source}: {path} is not a directory")
    return path


def settings_path() -> Path:
    """Where the user's settings file is (it need not exist)."""
    named = os.environ.get("DAEMONKIT_SETTINGS")
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "daemonkit" / "settings.toml"


def _settings_runtime_dir(path: Path) -> Path | None:
    """``runtime_dir`` from the settings file (TOML, that one key), None if no file or key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"settings {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings {path}: {exc}") from exc
    unknown = sorted(set(data) - {"runtime_dir"})
    if unknown:
        raise ConfigError(f"settings {path}: unknown key {unknown[0]!r}")
    value = data.get("runtime_dir")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"settings {path}: runtime_dir must be a non-empty string")
    return Path(value)


def ensure_private_dir(path: Path, uid: int | None = None, gid: int | None = None) -> Path:
    """Create *path* 0700 (parents as needed) or check that an existing one is safe to use.

    *uid*/*gid* name the owner the directory must have (default: the effective ids); when
    running as root for a daemon that drops to another user, the directory is created for,
    and handed to, that user. Raises :class:`RuntimeDirError` for a symlink, a non-directory,
    a foreign owner or group/world write permission.
    """
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    path = Path(os.path.abspath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)  # mode is masked by umask, which only ever removes bits
        if os.geteuid() == 0 and uid != 0:
            os.chown(path, uid, gid)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RuntimeDirError(f"runtime dir {path}: {exc.strerror}") from exc
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise RuntimeDirError(f"runtime dir {path}: {exc.strerror}") from exc
    unsafe = unsafe_dir(st)
    if unsafe:
        raise RuntimeDirError(f"runtime dir {path}: {unsafe}")
    if st.st_uid != uid:
        raise RuntimeDirError(f"runtime dir {path}: owned by uid {st.st_uid}, not {uid}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise RuntimeDirError(f"runtime dir {path}: not writable")
    return path


def unsafe_dir(st: os.stat_result) -> str | None:
    """Why a directory with lstat(2) result *st* is no safe runtime dir, or None if it is:
    a symlink (whoever made it chooses where it leads), not a directory, or writable by
    group or others (who could replace a socket or plant a pidfile). The owner is the
    caller's to check: who may own it depends on who asks."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink, refusing to follow it"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_mode & 0o022:
        return f"writable by group or others (mode {st.st_mode & 0o777:o})"
    return None


def object_name(kind: str, *, posix: bool = False, pid: int | None = None) -> str:
    """A fresh name for a kernel object of *kind* owned by *pid* (default: this process).

    ``posix=True`` gives the leading slash that shm_open(3) and mq_open(3) expect.
    """
    owner = os.getpid() if pid is None else pid
    # counter + 9 random digits: unique here (fixed width), not guessable by a squatter
    name = f"{NAME_PREFIX}.{owner}.{kind}.{next(_counter)}{secrets.randbelow(10**9):09d}"
    return "/" + name if posix else name


def owner_of_name(name: str) -> int | None:
    """The owner pid encoded in a daemonkit object name, or None for a foreign name."""
    m = _NAME_RE.match(name)
    return int(m.group(1)) if m else None


def sysv_key(index: int, pid: int | None = None) -> int:
    """The System V IPC key for object *index* (0-3) owned by *pid* (default: this process)."""
    if not 0 <= index < _SYSV_INDICES:
        raise ValueError("a process has four System V keys: index 0 to 3")
    owner = os.getpid() if pid is None else pid
    return SYSV_KEY_BASE | (owner % (1 << _SYSV_PID_BITS)) << 2 | index


def claim_sysv_index(kind: SysvKind, skip: frozenset[int] = frozenset()) -> int | None:
    """Reserve the lowest index (0-3) not yet held for a *kind* object, or None if none is free.

    Indices in *skip* are passed over (the caller found their key taken in the kernel).
    """
    with _sysv_lock:
        claimed = _sysv_claimed[kind]
        for index in range(_SYSV_INDICES):
            if index not in claimed and index not in skip:
                claimed.add(index)
                return index
    return None


def release_sysv_index(kind: SysvKind, index: int) -> None:
    """Give *index* back once its object is removed (``IPC_RMID`` frees the key at once)."""
    with _sysv_lock:
        _sysv_claimed[kind].discard(index)


def owner_of_sysv_key(key: int) -> int | None:
    """The owner pid packed into a daemonkit System V key, or None for a foreign key."""
    key &= 0xFFFFFFFF  # ipcs and sysv_ipc may show keys as signed
    if key & 0xFF000000 != SYSV_KEY_BASE:
        return None
    return (key >> 2) & ((1 << _SYSV_PID_BITS) - 1)


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: [0] state, [1] ppid, [2] pgrp,
    [3] session, [4] tty_nr, ... (proc(5), numbered from field 3).

    The name stands in parentheses and may itself hold spaces or ``)``, so the fields are
    split after the *last* ``)``. Raises ``FileNotFoundError`` (or ``ProcessLookupError``)
    when there is no such process.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].decode().split()


def pid_alive(pid: int) -> bool:
    """True if a process with this pid is alive: it exists and has not exited.

    A zombie (state ``Z``) has exited and holds nothing but its exit status until its parent
    (or init) reaps it; where PID 1 does not reap orphans (some containers), a killed daemon
    stays a zombie for good, and its objects must count as leftovers.
    """
    try:
        return proc_stat(pid)[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False
