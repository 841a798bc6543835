"""Whom a client talks to: the checks every command makes before it believes the daemon.

A client of the daemon (``status``, ``reload``, ``stop``, ``bench --target daemon``) finds it
by a directory name, and a name is only as trustworthy as whoever can write the directories on
the way to it. Another user who creates ``/tmp/daemonkit-UID`` before its owner does, and
listens on a ``control.sock`` there, would otherwise be believed: asked to open a FIFO, it
could name the victim's own private file; asked whom to signal, it could answer ``-1``.

Facts about trusting a runtime directory:

* The directory itself gets the checks ``start`` makes (:func:`daemonkit.runtime.
  ensure_private_dir`): a real directory, not a symlink, not writable by group or others,
  owned by a trusted user. Trusted are this process's user and root; root also trusts the
  user a daemon was started for with ``--user`` (the directory is that user's), but only
  when the pidfile is the one root made before dropping privileges: a regular file, owned
  by root, one link (``fs.protected_hardlinks`` stops another user from linking root's
  files), writable by nobody else.
* Every ancestor must be owned by root, this user or the directory's owner, and not
  writable by group or others, unless it is root's and sticky (``/tmp``): there only an
  entry's owner may rename or remove it, and the entry was checked.
* The directory is opened once (``O_PATH|O_DIRECTORY|O_NOFOLLOW``) and everything in it is
  reached through that descriptor (``/proc/self/fd/N/NAME`` for connect(2), ``dir_fd`` for
  open(2) and stat(2)): a rename after the check cannot redirect what follows.
* The process behind ``control.sock`` is asked of the kernel, not of itself: ``SO_PEERCRED``
  on the connected socket gives the pid and uid that called listen(2). Its uid must be the
  directory's owner, its pid the pidfile's lock holder.
* Every reply is checked before use (:mod:`daemonkit.service.replies`): a name must be a
  plain name in this directory, made by this daemon (``dk.PID.KIND.N``), of the expected
  type and owner; a signal target must be the daemon's own pid, the signal the expected one.

Kernel path: realpath(3) and lstat(2) of each ancestor; open(2) ``O_PATH``; fstatat(2)
``AT_SYMLINK_NOFOLLOW``; getsockopt(2) ``SO_PEERCRED``.

Lifetime: a :class:`TrustedDir` holds one ``O_PATH`` descriptor until closed.

See also: unix(7) SO_PEERCRED, open(2) O_PATH and O_NOFOLLOW, path_resolution(7),
proc(5) /proc/sys/fs/protected_hardlinks.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import struct
from pathlib import Path

from daemonkit.errors import DaemonkitError
from daemonkit.runtime import NAME_PREFIX, unsafe_dir

__all__ = [
    "TrustedDir",
    "UntrustedError",
    "check_process_uid",
    "check_status",
    "peer_credentials",
]

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class UntrustedError(DaemonkitError):
    """The runtime dir, the control socket or a reply cannot be trusted: not the daemon."""

    exit_code = 1


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer of a connected Unix socket, as the kernel recorded them."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(creds)
    return pid, uid, gid


def _trusted_pidfile(pidfile: Path | None) -> bool:
    """True for a pidfile root made: regular, root's, one link, writable by root alone."""
    if pidfile is None:
        return False
    try:
        st = os.lstat(pidfile)
    except OSError:
        return False
    return (
        stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_nlink == 1 and not st.st_mode & 0o022
    )


class TrustedDir:
    """A runtime directory that passed the checks, held open by an ``O_PATH`` descriptor.

    ``uid`` is the user the daemon must run as (the directory's owner).
    """

    fd = -1  # class default: close() is safe after a failed constructor

    def __init__(self, path: Path, pidfile: Path | None = None, ancestors: bool = True) -> None:
        self.path = Path(os.path.abspath(path))
        me = os.geteuid()
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            raise  # "not running": the caller says so
        except OSError as exc:
            raise UntrustedError(f"runtime dir {self.path}: {exc.strerror}") from exc
        unsafe = unsafe_dir(st)  # the checks `start` makes
        if unsafe:
            raise UntrustedError(f"runtime dir {self.path}: {unsafe}")
        if st.st_uid not in (me, 0) and not (me == 0 and _trusted_pidfile(pidfile)):
            raise UntrustedError(
                f"runtime dir {self.path}: owned by uid {st.st_uid}, a user this command "
                "does not trust"
            )
        self.uid = st.st_uid
        if ancestors:  # the daemon itself skips them: it works through the descriptor only
            self._check_ancestors({0, me, st.st_uid})
        try:
            fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise UntrustedError(f"runtime dir {self.path}: {exc.strerror}") from exc
        held = os.fstat(fd)
        if (held.st_dev, held.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise UntrustedError(f"runtime dir {self.path}: replaced while being checked")
        self.fd = fd

    def _check_ancestors(self, owners: set[int]) -> None:
        real = Path(os.path.realpath(self.path.parent))
        for anc in (real, *real.parents):
            st = os.lstat(anc)
            if st.st_uid not in owners:
                raise UntrustedError(
                    f"runtime dir {self.path}: ancestor {anc} is owned by uid {st.st_uid}, "
                    "who could swap the directory"
                )
            writable = st.st_mode & 0o022
            if writable and not (st.st_uid == 0 and st.st_mode & stat.S_ISVTX):
                raise UntrustedError(
                    f"runtime dir {self.path}: ancestor {anc} is writable by group or others "
                    f"(mode {st.st_mode & 0o7777:o}) and not sticky"
                )

    def via_fd(self, name: str) -> str:
        """*name* in the held directory, as a path the kernel resolves through the descriptor."""
        return f"{self.held}/{name}"

    @property
    def held(self) -> Path:
        """The held directory as a path: ``/proc/self/fd/N``, a link the kernel follows to
        the very directory opened, wherever it has been renamed to since."""
        return Path(f"/proc/self/fd/{self.fd}")

    def entry(self, name: str, kind: int, what: str) -> os.stat_result:
        """lstat of *name* in the held directory; it must be of *kind* (``stat.S_IFSOCK``...),
        owned by the daemon's user, and not writable by group or others."""
        if "/" in name or name in ("", ".", ".."):
            raise UntrustedError(f"{what} {name!r}: not a plain name")
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise UntrustedError(f"{what} {self.path / name}: {exc.strerror}") from exc
        if stat.S_IFMT(st.st_mode) != kind:
            raise UntrustedError(f"{what} {self.path / name}: not a {_KINDS.get(kind, kind)}")
        self.owned(st, f"{what} {self.path / name}")
        return st

    def owned(self, st: os.stat_result, what: str) -> None:
        """Raise unless *st* is owned by the daemon's user and writable by nobody else."""
        if st.st_uid != self.uid:
            raise UntrustedError(f"{what}: owned by uid {st.st_uid}, not the daemon's {self.uid}")
        if st.st_mode & 0o022:
            raise UntrustedError(f"{what}: writable by group or others")

    def object_name(self, value: object, daemon_pid: int, kind: str, what: str) -> str:
        """A name the daemon made for *kind* (``dk.PID.KIND.N``, PID the daemon's), from a
        reply field that may be a bare name or a path in this directory."""
        if not isinstance(value, str):
            raise UntrustedError(f"{what}: expected a string, got {type(value).__name__}")
        name = value
        if "/" in value:
            path = Path(value)
            if path.parent != self.path:
                raise UntrustedError(f"{what} {value!r}: not in the runtime dir {self.path}")
            name = path.name
        if not re.fullmatch(rf"{NAME_PREFIX}\.{daemon_pid}\.{re.escape(kind)}\.\d+", name):
            raise UntrustedError(f"{what} {value!r}: not a name daemon pid {daemon_pid} makes")
        return name

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> TrustedDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_KINDS = {stat.S_IFSOCK: "socket", stat.S_IFIFO: "FIFO", stat.S_IFREG: "regular file"}


def check_status(reply: dict[str, object], daemon_pid: int) -> dict[str, object]:
    """The daemon's ``status`` reply, its shape checked: the fields ``status`` prints, of the
    right types, and the pid the kernel reported for the listener."""
    if "error" in reply:
        raise UntrustedError(f"status refused: {reply['error']}")
    pid = reply.get("pid")
    if type(pid) is not int or pid != daemon_pid:
        raise UntrustedError(f"status reply: pid {pid!r} is not the listener's {daemon_pid}")
    for key in ("version", "backend", "name", "runtime_dir"):
        if not isinstance(reply.get(key), str):
            raise UntrustedError(f"status reply: {key!r} is not a string")
    for key in ("config", "log_file"):
        if not isinstance(reply.get(key), str | None):
            raise UntrustedError(f"status reply: {key!r} is not a path")
    if type(reply.get("reloads")) is not int:
        raise UntrustedError("status reply: 'reloads' is not a count")
    uptime = reply.get("uptime_s")
    if type(uptime) not in (int, float) or not 0 <= uptime < 1e10:  # type: ignore[operator]
        raise UntrustedError("status reply: 'uptime_s' is not a duration")
    endpoints = reply.get("endpoints")
    if not isinstance(endpoints, dict) or not all(
        isinstance(name, str)
        and isinstance(counters, dict)
        and all(type(v) is int for v in counters.values() if not isinstance(v, dict | str))
        for name, counters in endpoints.items()
    ):
        raise UntrustedError("status reply: 'endpoints' is not a table of counters")
    return reply


def check_process_uid(pid: int, uid: int) -> None:
    """Raise unless process *pid* runs as *uid* (the owner of ``/proc/PID`` is its euid)."""
    try:
        owner = os.stat(f"/proc/{pid}").st_uid
    except FileNotFoundError:
        return  # gone already: nothing will be signalled
    if owner != uid:
        raise UntrustedError(
            f"pid {pid} holds the pidfile but runs as uid {owner}, not as the runtime dir's "
            f"owner {uid}: not signalling it"
        )
