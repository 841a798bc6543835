"""The python-daemon backend: the same daemon through ``daemon.DaemonContext``, plus what it lacks.

What ``DaemonContext.open()`` (python-daemon 3.1) does, in its own order: umask (default 0!),
chdir, setgid/setuid (before detaching, so before any file the daemon opens as root; no
supplementary groups unless ``initgroups=True``), fork + setsid + fork with ``os._exit`` in
the parents, its own signal map (SIGTSTP/SIGTTIN/SIGTTOU ignored, SIGTERM raising
SystemExit), close every descriptor up to the RLIMIT_NOFILE hard limit with os.closerange
(one close_range(2) call on Linux), dup2 of the given streams onto 0-2.

What it lacks, and this module adds around it so both backends give the same daemon:

* steps 2-4 (signal dispositions and mask reset, environment keep-list): done in the original
  process before anything else, exactly as the native backend does;
* step 14, the readiness pipe: ``open()`` makes the *calling* process exit in its first
  fork's parent, so nobody would be left to report to. We fork once ourselves; the original
  process waits on the pipe and the child calls ``open()`` (one extra, short-lived process);
* step 12, a locked pidfile: its ``pidfile`` hook expects a context manager such as the
  ``lockfile`` package's, which uses link(2) tricks rather than a kernel lock. We take our
  own :class:`~daemonkit.daemon.pidfile.Pidfile` after ``open()``;
* step 13 after the pidfile: we pass no uid/gid (python-daemon's setgid/setuid then keep the
  current ids) and drop privileges ourselves once the root-only files are open.

A trap avoided: ``detach_process`` defaults to *off* when the parent is pid 1 or stdin is a
socket (python-daemon then assumes init or inetd already detached it), so it is forced on.
The streams for 0-2 are ours (the log file or /dev/null), closed again once ``open()`` has
dup2'd them.

Kernel path and lifetime: as :mod:`daemonkit.daemon.native`.

See also: PEP 3143, daemon(7).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from daemonkit.daemon.readiness import ReadinessPipe
from daemonkit.daemon.steps import (
    DaemonSettings,
    Service,
    as_daemon,
    close_inherited_fds,
    drop_privileges,
    open_log,
    prepare_log_dir,
    require_single_thread,
    reset_signal_handlers,
    reset_signal_mask,
    sanitize_environment,
    take_pidfile,
    wait_for_daemon,
)
from daemonkit.errors import DaemonStartError

__all__ = ["daemonize"]


def daemonize(settings: DaemonSettings, service: Service) -> int:
    """Start the daemon through DaemonContext; return the original process's exit code."""
    prepare_log_dir(settings.log_file, settings.user)  # can fail: fail before any fork
    close_inherited_fds()  # 1 (DaemonContext closes again, later)
    reset_signal_handlers()  # 2: not in DaemonContext
    reset_signal_mask()  # 3: not in DaemonContext
    sanitize_environment(settings.keep_env, settings.reexec_argv)  # 4: not in DaemonContext
    require_single_thread()
    pipe = ReadinessPipe()  # 14: not in DaemonContext
    forked_at = time.monotonic()  # where the start-up latencies are counted from
    child = os.fork()  # the waiter stays here; DaemonContext forks twice more in the child
    if child > 0:
        return wait_for_daemon(pipe, child, settings, forked_at)  # 15
    pipe.keep_write_end()
    as_daemon(pipe, _become_daemon(settings, pipe, service), service)


def _become_daemon(
    settings: DaemonSettings, pipe: ReadinessPipe, service: Service
) -> Callable[[], None]:
    def become() -> None:
        import daemon  # python-daemon; imported here so the native path never loads it

        stdin = open(os.devnull, "rb")  # noqa: SIM115 -- closed below, after the dup2
        out = os.fdopen(open_log(settings.log_file), "ab", buffering=0)
        ctx = daemon.DaemonContext(
            detach_process=True,  # 5-8: fork, setsid, fork, os._exit in the parents
            stdin=stdin,  # 9 (dup2 onto 0-2)
            stdout=out,
            stderr=out,
            umask=settings.umask,  # 10
            working_directory=str(settings.workdir),  # 11
            files_preserve=[pipe.wfd],  # 1: everything else is closed
            signal_map={},  # keep step 2's defaults; the service installs its own handlers
            prevent_core=False,  # the native backend leaves RLIMIT_CORE alone, so do we
        )
        try:
            ctx.open()
        except daemon.daemon.DaemonError as exc:
            raise DaemonStartError(f"python-daemon: {exc}") from exc
        stdin.close()  # fds 0-2 are dup2 copies: these originals are no longer needed
        out.close()
        pipe.announce_pid(os.getpid())
        pidfile = take_pidfile(settings)  # 12: ours, kernel-locked
        pipe.mark("pidfile")
        drop_privileges(settings.user)  # 13: ours, after the root-only files are open
        service.init(pidfile)  # the service's own setup

    return become
