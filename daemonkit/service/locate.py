"""Finding the running demo daemon: its pidfile's lock holder and its control socket.

Every client of the daemon (``status``, ``stop``, ``reload``, ``bench --target daemon``)
finds it here, the same way.

Facts about finding a daemon:

* The pid *written* in a pidfile may be stale: the daemon was SIGKILLed and the pid reused.
  The pid that *holds the lock* on the pidfile is not: the kernel drops a process's locks
  when it exits, so the lock holder (``F_GETLK``) is a live process, the daemon itself.
* A pidfile that exists but that no process holds is a dead daemon's leftover (LSB status 1);
  no pidfile at all means it is not running (LSB status 3).
* The control socket is ``control.sock`` in the runtime directory; the pidfile is
  ``daemonkit.pid`` there unless ``--pidfile`` names another.

*Kernel path*: open(2) of the pidfile ``O_RDONLY|O_NOFOLLOW``, fcntl(2) ``F_GETLK``
(:func:`daemonkit.daemon.pidfile.lock_holder`).
*Lifetime*: nothing is held: the answer is true when it is given, and may change after.
*See also*: fcntl(2), daemon(7), :mod:`daemonkit.service.control`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from daemonkit.daemon.pidfile import lock_holder
from daemonkit.errors import NotRunningError, PidfileError
from daemonkit.runtime import resolve_runtime_dir
from daemonkit.service.control import CONTROL_SOCKET, PIDFILE_NAME

__all__ = ["DaemonLocation", "daemon_paths", "locate_daemon", "pidfile_holder"]


@dataclass(frozen=True)
class DaemonLocation:
    """Where the daemon runs, and which process (if any) holds its pidfile right now."""

    runtime_dir: Path
    pidfile: Path
    pidfile_exists: bool
    pid: int | None  # the pidfile's lock holder: the live daemon, or None

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / CONTROL_SOCKET

    def running_pid(self) -> int:
        """The daemon's pid; NotRunningError when no live process holds the pidfile."""
        if self.pid is None:
            raise NotRunningError(f"the daemon is not running (no process holds {self.pidfile})")
        return self.pid

    def again(self) -> DaemonLocation:
        """The same paths, the lock holder asked anew (e.g. while waiting for it to exit)."""
        exists, pid = pidfile_holder(self.pidfile)
        return replace(self, pidfile_exists=exists, pid=pid)


def daemon_paths(runtime_dir: Path | None = None, pidfile: Path | None = None) -> tuple[Path, Path]:
    """The runtime dir and pidfile from ``--runtime-dir`` and ``--pidfile``, absolute, with
    their defaults filled in (a daemon changes directory before it uses them)."""
    rdir = resolve_runtime_dir(runtime_dir)
    return rdir, Path(os.path.abspath(pidfile or rdir / PIDFILE_NAME))


def locate_daemon(runtime_dir: Path | None = None, pidfile: Path | None = None) -> DaemonLocation:
    """The daemon of *runtime_dir* and *pidfile* (see :func:`daemon_paths`) and its pid.

    Raises PidfileError when the pidfile exists but cannot be opened (e.g. permission).
    """
    rdir, path = daemon_paths(runtime_dir, pidfile)
    exists, pid = pidfile_holder(path)
    return DaemonLocation(rdir, path, exists, pid)


def pidfile_holder(pidfile: Path) -> tuple[bool, int | None]:
    """(pidfile exists, pid holding its lock or None); PidfileError if it cannot be opened."""
    try:
        return True, lock_holder(pidfile)
    except FileNotFoundError:
        return False, None
    except OSError as exc:
        raise PidfileError(f"pidfile {pidfile}: {exc.strerror}") from exc
