"""The steps of daemon(7)'s "SysV daemon" list, one small function each, shared by both backends.

:mod:`daemonkit.daemon.native` calls them in order, and so reads as the list itself;
:mod:`daemonkit.daemon.pydaemon` calls the ones python-daemon's ``DaemonContext`` does not do.
Each function says *why* the step exists: what would go wrong in a daemon that skipped it.

Kernel path: close(2) on descriptors listed in ``/proc/self/fd``, rt_sigaction(2),
rt_sigprocmask(2), execve(2) (the only way to replace the environment block the kernel shows in
``/proc/PID/environ``), fork(2), setsid(2), dup2(2), umask(2), chdir(2), setgroups(2),
setgid(2), setuid(2).

Lifetime: everything here happens once, while the process turns into a daemon.

See also: daemon(7), setsid(2), credentials(7), signal(7), proc(5).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from daemonkit.daemon.pidfile import Pidfile
from daemonkit.daemon.readiness import Outcome, ReadinessPipe
from daemonkit.errors import DaemonkitError, DaemonStartError, RuntimeDirError
from daemonkit.runtime import ensure_private_dir, pid_alive
from daemonkit.units import fmt_ns

__all__ = [
    "DEFAULT_KEEP_ENV",
    "DaemonSettings",
    "Service",
    "User",
    "as_daemon",
    "change_directory",
    "clean_environment",
    "close_inherited_fds",
    "drop_privileges",
    "fork_and_exit_parent",
    "open_log",
    "prepare_log_dir",
    "redirect_stdio",
    "require_single_thread",
    "reset_signal_handlers",
    "reset_signal_mask",
    "sanitize_environment",
    "set_umask",
    "startup_latencies",
    "take_pidfile",
    "wait_for_daemon",
]

# What survives step 4 (PATH is reset to SAFE_PATH). LC_* and LANG keep messages readable;
# NOTIFY_SOCKET lets a daemon started by systemd (Type=forking, NotifyAccess=) talk to it.
DEFAULT_KEEP_ENV = ("LANG", "LANGUAGE", "LC_*", "TZ", "NOTIFY_SOCKET")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class User:
    """Whom the daemon becomes at step 13: resolved from the name while still root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


@dataclass(frozen=True)
class DaemonSettings:
    """Everything the daemonizer needs; built by the CLI from ``daemonkit start``'s options."""

    runtime_dir: Path
    pidfile: Path
    reexec_argv: list[str]  # how to start this same command again (step 4)
    log_file: Path | None = None
    umask: int = 0o022
    workdir: Path = Path("/")
    user: User | None = None
    keep_env: tuple[str, ...] = DEFAULT_KEEP_ENV
    timeout: float = 10.0
    json_report: bool = False  # the starter prints its outcome and step latencies as JSON
    pidfile_mode: int = 0o644


class Service(Protocol):
    """What the daemonizer turns into a daemon: the service's own two phases.

    It is built by the caller before the forks, so building it must touch nothing of the kernel
    (step 1 closes every inherited descriptor); both methods run in the daemon, after step 13.
    """

    def init(self, pidfile: Pidfile) -> None:
        """Set up (configuration, sockets, endpoints), given the locked pidfile, which it owns
        from here on. Raise :class:`~daemonkit.errors.DaemonkitError` to fail the start: its
        one-line message reaches the starter (step 14). Nothing may be left behind on failure."""

    def serve(self) -> int:
        """Serve until stopped; return the daemon's exit code."""


# -- steps 1-4: in the original process, before any fork -------------------------------------


def close_inherited_fds(keep: Iterable[int] = ()) -> None:
    """1. Close every descriptor except 0-2 and *keep*.

    Why: a descriptor inherited from whoever started us (a terminal's pty, a pipe a shell is
    waiting on, a listening socket) would stay open for the daemon's whole life, keeping that
    object alive and the waiting reader blocked. The open ones are listed in /proc/self/fd,
    so nothing walks up to RLIMIT_NOFILE (which can be a million).
    """
    keep = {0, 1, 2, *keep}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:  # the listing's own directory fd, already closed
                    raise


def reset_signal_handlers() -> None:
    """2. Every signal back to its default action.

    Why: ignored dispositions survive fork and exec (e.g. a shell's ``nohup`` leaves SIGHUP
    ignored), so a daemon could silently never see the SIGHUP that asks it to reload. The
    daemon installs the handlers it wants afterwards, on purpose.
    """
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue  # their action cannot be changed
        with contextlib.suppress(OSError, ValueError):  # 32, 33: reserved by the C library
            signal.signal(sig, signal.SIG_DFL)


def reset_signal_mask() -> None:
    """3. Unblock every signal.

    Why: the mask is inherited across fork and execve; a daemon started with SIGTERM blocked
    could not be stopped (SigBlk in /proc/PID/status shows it).
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def clean_environment(keep: tuple[str, ...], environ: dict[str, str]) -> dict[str, str]:
    """The environment reduced to the names (or ``fnmatch`` patterns) in *keep*, with a PATH."""
    clean = {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in keep)}
    clean.setdefault("PATH", SAFE_PATH)
    return clean


def sanitize_environment(keep: tuple[str, ...], argv: list[str]) -> None:
    """4. Reduce the environment to a keep-list, by executing this program again with it.

    Why: variables such as LD_PRELOAD, PYTHONPATH, HOME or a user's locale change how a
    long-lived process behaves, and secrets in them would be readable in /proc/PID/environ.
    Deleting them from ``os.environ`` is not enough: the kernel shows the block the process
    was *exec'd* with, which only a new execve(2) replaces. The new image starts this command
    from the top: steps 1-3 run again (they are idempotent; exec keeps the blocked mask and
    ignored signals, and drops caught ones) and this step finds the environment clean.
    """
    clean = clean_environment(keep, dict(os.environ))
    if clean == dict(os.environ):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(argv[0], argv, clean)  # does not return on success
    except OSError as exc:
        raise DaemonStartError(f"re-executing {argv[0]}: {exc.strerror}") from exc


def require_single_thread() -> None:
    """fork(2) copies only the calling thread: a lock another thread held stays locked for ever."""
    if threading.active_count() != 1:
        raise DaemonStartError("refusing to fork: other threads exist")


# -- steps 6-13: in the children ---------------------------------------------------------------


def fork_and_exit_parent() -> None:
    """7-8. Fork again; the session leader exits.

    Why: after setsid() we lead a new session, and a session leader that opens a terminal
    acquires it as its controlling terminal. The grandchild is not a session leader (its pid
    differs from its sid) and so can never reacquire one. The parent leaves with os._exit: a
    forked copy must not run atexit handlers or flush stdio buffers a second time.
    """
    if os.fork() > 0:
        os._exit(0)


def prepare_log_dir(log_file: Path | None, user: User | None = None) -> None:
    """Before any fork: the log file's directory exists, or is made as the runtime dir is.

    Why before: once the starter has forked, a failure can only travel back through the
    readiness pipe, and a half-made daemon must be undone; a missing directory is known now.
    A missing one is created 0700 for the daemon's final user (:func:`ensure_private_dir`); an
    existing one is used as it is (e.g. ``/var/log``), a non-directory refused.
    """
    if log_file is None:
        return
    parent = log_file.parent
    if os.path.isdir(parent):
        return
    if os.path.lexists(parent):
        raise DaemonStartError(f"log file {log_file}: {parent} is not a directory")
    try:
        ensure_private_dir(parent, *((user.uid, user.gid) if user else ()))
    except RuntimeDirError as exc:
        raise DaemonStartError(f"log file {log_file}: {exc}") from exc


def open_log(path: Path | None) -> int:
    """A descriptor for stdout/stderr: the log file (append, created 0640) or /dev/null."""
    if path is None:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        # O_APPEND: every write lands at the current end, even after logrotate's copytruncate.
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise DaemonStartError(f"log file {path}: {exc.strerror}") from exc


def redirect_stdio(log_file: Path | None) -> None:
    """9. stdin from /dev/null, stdout and stderr to the log file or /dev/null.

    Why: the terminal we were started from will go away (hangup), and a write to a closed
    terminal or pipe raises EIO/SIGPIPE; and an fd 0-2 left closed would be handed to the next
    open(), so a socket could receive stray prints.
    """
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    out = open_log(log_file)
    os.dup2(null, 0)  # dup2 clears O_CLOEXEC on the copy: 0-2 stay open across exec
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def set_umask(mask: int) -> None:
    """10. A known umask. Why: the inherited one is whatever the starting shell had."""
    os.umask(mask)


def change_directory(workdir: Path) -> None:
    """11. chdir (to / by default). Why: a daemon's cwd keeps its file system busy (no umount)."""
    try:
        os.chdir(workdir)
    except OSError as exc:
        raise DaemonStartError(f"workdir {workdir}: {exc.strerror}") from exc


def take_pidfile(settings: DaemonSettings) -> Pidfile:
    """12. The runtime dir (made for the final user), then the locked pidfile with our pid.

    Why here: the pid is final only after the last fork, and POSIX locks are not inherited by
    fork(2), so the process that will live is the one that takes the lock.
    """
    user = settings.user
    ensure_private_dir(settings.runtime_dir, *((user.uid, user.gid) if user else ()))
    pidfile = Pidfile(settings.pidfile, settings.pidfile_mode)
    pidfile.acquire()
    return pidfile


def drop_privileges(user: User | None) -> None:
    """13. Become *user*: supplementary groups, then gid, then uid (only root can do any of it).

    Why this order: setuid() gives up root, and with it the right to change groups; so the
    groups go first. Why this late: the files that only root may open (log, pidfile) are open.
    """
    if user is None:
        return
    try:
        os.setgroups(list(user.groups))  # otherwise root's own groups (e.g. 0) would remain
        os.setgid(user.gid)
        os.setuid(user.uid)  # as root this sets real, effective and saved uid alike
    except OSError as exc:
        raise DaemonStartError(f"dropping privileges to {user.name}: {exc.strerror}") from exc
    try:
        os.setuid(0)
    except PermissionError:
        return  # as it should be: the way back to root is closed
    raise DaemonStartError(f"dropping privileges to {user.name}: could regain root")


# -- steps 14-15: the daemon reports, the original process exits -----------------------------


def as_daemon(pipe: ReadinessPipe, become: Callable[[], None], service: Service) -> NoReturn:
    """Run *become* (the remaining steps and the service's init) in the child, report, serve.

    14. "ready" goes through the pipe only once *become* returned, i.e. once the pidfile is
    written and the control socket listens; otherwise the daemon's own one-line error does.
    Every path ends in os._exit: this is a forked process and never returns to the CLI.
    """
    try:
        become()
    except DaemonkitError as err:
        pipe.report_error(str(err), err.exit_code)
        os._exit(err.exit_code)
    except BaseException as exc:  # a bug: the starter must hear about it rather than see EOF
        traceback.print_exc()  # into the log file, if stderr is already redirected
        pipe.report_error(f"internal error: {type(exc).__name__}: {exc}", 1)
        os._exit(1)
    pipe.report_ready()
    code = 1
    try:
        code = service.serve()
    finally:
        os._exit(code)


def wait_for_daemon(
    pipe: ReadinessPipe, child: int, settings: DaemonSettings, forked_at: float
) -> int:
    """15. In the original process: exit 0 once the daemon is ready, else say why.

    *forked_at* is this process's ``time.monotonic()`` just before its first fork: with the
    daemon's own timestamps it gives how long each stage took (:func:`startup_latencies`).
    On timeout the half-started daemon is terminated (SIGTERM, then SIGKILL after 1 s), so
    that a failed ``start`` never leaves an unmanaged process behind.
    """
    out = pipe.wait(settings.timeout)
    if out.timed_out:
        victim = out.pid or child
        how = _terminate(victim)
        os.waitpid(child, 0)
        raise DaemonStartError(
            f"daemon not ready within {settings.timeout:g} s; {how} the half-started daemon"
            f" (pid {victim})"
        )
    os.waitpid(child, 0)  # the first child exits right after its fork: reap it
    if out.ready:
        latencies = startup_latencies(out, forked_at)
        if settings.json_report:
            print(json.dumps({"pid": out.pid, "forked_at": forked_at, **latencies}))
        else:
            ready = latencies.get("fork_to_ready_s")
            after = "" if ready is None else f"; ready {fmt_ns(ready * 1e9)} after fork"
            print(f"daemonkit: started (pid {out.pid}){after}")
        return 0
    err = DaemonStartError(out.error or "daemon failed")
    err.exit_code = out.exit_code
    raise err


def startup_latencies(out: Outcome, forked_at: float) -> dict[str, float]:
    """Seconds from the first fork to each stamped stage: ``fork_to_pid_s`` (the daemon
    exists, after both forks and setsid), ``fork_to_pidfile_s``, ``fork_to_ready_s``."""
    return {f"fork_to_{k}_s": round(t - forked_at, 6) for k, t in out.stamps.items()}


def _terminate(pid: int, grace: float = 1.0) -> str:
    """SIGTERM, then SIGKILL if *pid* is still there after *grace* s; say which one ended it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "found gone"
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):  # a zombie waiting for its parent counts as gone
            return "terminated (SIGTERM)"
        time.sleep(0.01)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "terminated (SIGTERM)"
    return "killed (SIGKILL)"
