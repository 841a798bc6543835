"""A race-free pidfile: a file holding the daemon's pid, locked for the daemon's whole life.

The copied recipe ("if the file exists and the pid in it is alive, refuse; else write ours")
has a race between the check and the write, and trusts a number that may by now belong to an
unrelated process. Here the kernel decides instead: the daemon takes a POSIX record lock
(fcntl(2) ``F_SETLK``) on the whole file and keeps the descriptor open until it exits. The
kernel drops the lock when the process dies, however it dies, so:

* lock taken: we are the only instance; write our pid (truncate first, so no old digits stay);
* lock refused (``EAGAIN``/``EACCES``): another instance is alive; ``F_GETLK`` asks the kernel
  which pid holds it, which is more reliable than the file's contents;
* file present but unlocked: its owner died without cleaning up (SIGKILL, power loss); it is
  stale and simply taken over, no guessing involved.

Kernel path: open(2) with ``O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC`` (``O_NOFOLLOW``: a symlink
planted in our place is refused instead of followed to a file of someone else's choosing;
``O_CLOEXEC``: a program the daemon execs does not inherit it), fcntl(2) ``F_SETLK``,
ftruncate(2), pwrite(2). The lock is visible as a ``POSIX ADVISORY WRITE`` line in
``/proc/locks`` with the daemon's pid and the file's inode.

Facts about POSIX record locks: they belong to the (process, file) pair, are not inherited
across fork(2) (so the lock is taken by the final daemon process, after the forks), and are
released when the process closes *any* descriptor of that file; the daemon therefore never
opens its own pidfile a second time.

Lifetime: the file is removed by the daemon at a graceful stop, and only if it still holds the
daemon's pid (a successor may already have taken it over). After a crash it stays, unlocked.

See also: fcntl(2) "Advisory record locking", proc(5) /proc/locks, daemon(7).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from pathlib import Path

from daemonkit.errors import AlreadyRunningError, PidfileError

__all__ = ["Pidfile", "lock_holder", "read_pid"]

# struct flock on Linux x86-64/arm64: short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid (plus padding). Used with F_GETLK to ask the kernel who holds the lock.
_FLOCK = struct.Struct("hhqqi4x")


def _getlk(fd: int) -> int | None:
    """The pid holding a lock that would conflict with a write lock on the file, or None."""
    query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    l_type, _, _, _, l_pid = _FLOCK.unpack(fcntl.fcntl(fd, fcntl.F_GETLK, query))
    return None if l_type == fcntl.F_UNLCK else int(l_pid)


def lock_holder(path: Path) -> int | None:
    """The pid that holds *path* locked, None when unlocked. Raises FileNotFoundError if absent.

    Opened read-only: F_GETLK needs no write access, so any user who can read the pidfile
    can ask.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return _getlk(fd)
    finally:
        os.close(fd)


def read_pid(path: Path) -> int | None:
    """The pid written in *path*, or None when the file is missing, empty or not a number."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
            text = f.read(32)
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


class Pidfile:
    """The daemon's own pidfile: acquire (open, lock, write), then release at exit."""

    _fd = -1  # class default: release() is safe after a failed acquire()

    def __init__(self, path: Path, mode: int = 0o644) -> None:
        self.path = path
        self.mode = mode  # 0644: anyone may read the pid; 0600 for a private daemon
        self.pid: int | None = None

    def acquire(self) -> None:
        """Open, lock and write this process's pid. Raises AlreadyRunningError or PidfileError."""
        try:
            fd = os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, self.mode
            )
        except OSError as exc:
            why = "is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise PidfileError(f"pidfile {self.path}: {why}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in (os.geteuid(), 0):
            # Planted by another user: they could rewrite the pid in it at any time, and
            # whoever signals "the pid in the pidfile" (logrotate's kill -HUP) would obey them.
            os.close(fd)
            raise PidfileError(
                f"pidfile {self.path}: not a regular file of ours (uid {st.st_uid}),"
                " refusing to trust it"
            )
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # F_SETLK, whole file
        except OSError as exc:
            holder = _getlk(fd) if exc.errno in (errno.EAGAIN, errno.EACCES) else None
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise AlreadyRunningError(holder) from exc
            raise PidfileError(f"pidfile {self.path}: lock: {exc.strerror}") from exc
        self._fd = fd  # from here on the lock is ours until this process exits
        self.pid = os.getpid()
        try:
            os.ftruncate(fd, 0)  # a stale file may hold a longer pid: no digits may remain
            os.pwrite(fd, f"{self.pid}\n".encode(), 0)
        except OSError as exc:
            self.release()
            raise PidfileError(f"pidfile {self.path}: write: {exc.strerror}") from exc

    def release(self) -> None:
        """Remove the file if it still holds our pid, then close (which drops the lock)."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            ours = os.pread(fd, 32, 0).strip() == str(self.pid).encode()
            st_fd, st_path = os.fstat(fd), os.lstat(self.path)
            same = (st_fd.st_dev, st_fd.st_ino) == (st_path.st_dev, st_path.st_ino)
            if ours and same:
                os.unlink(self.path)  # unlink before close: no window where it is unlocked
        except FileNotFoundError:
            pass  # removed by hand; nothing left to clean
        finally:
            os.close(fd)
