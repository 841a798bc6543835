"""The native backend: daemon(7)'s fifteen SysV steps, in order, one call per step.

Read :func:`daemonize` top to bottom; each step's *why* is in the docstring of the function it
calls (:mod:`daemonkit.daemon.steps`). The original process runs steps 1-5 and 15; the first
child runs 6-8; the daemon (the grandchild) runs 9-14 and then serves.

Kernel path: see :mod:`daemonkit.daemon.steps`; three processes are involved:
original (waits on the readiness pipe) -> child (setsid, session leader, exits) -> daemon
(not a session leader, parent is init or the nearest subreaper).

Lifetime: the original process exits when the daemon reports; the daemon lives until SIGTERM.

See also: daemon(7) "SysV Daemons", fork(2), setsid(2), credentials(7).
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
    change_directory,
    close_inherited_fds,
    drop_privileges,
    fork_and_exit_parent,
    prepare_log_dir,
    redirect_stdio,
    require_single_thread,
    reset_signal_handlers,
    reset_signal_mask,
    sanitize_environment,
    set_umask,
    take_pidfile,
    wait_for_daemon,
)

__all__ = ["daemonize"]


def daemonize(settings: DaemonSettings, service: Service) -> int:
    """Make *service* a daemon and run it there; return the original process's exit code
    (only it returns)."""
    prepare_log_dir(settings.log_file, settings.user)  # can fail: fail before any fork
    close_inherited_fds()  # 1
    reset_signal_handlers()  # 2
    reset_signal_mask()  # 3
    sanitize_environment(settings.keep_env, settings.reexec_argv)  # 4 (may re-exec us)
    require_single_thread()
    pipe = ReadinessPipe()  # for step 14: made before the first fork, shared by all three
    forked_at = time.monotonic()  # where the start-up latencies are counted from
    child = os.fork()  # 5
    if child > 0:
        return wait_for_daemon(pipe, child, settings, forked_at)  # 15, after the daemon's 14
    pipe.keep_write_end()
    become = _become_daemon(settings, pipe, service)
    as_daemon(pipe, become, service)  # 14: ready or the error; never returns


def _become_daemon(
    settings: DaemonSettings, pipe: ReadinessPipe, service: Service
) -> Callable[[], None]:
    def become() -> None:
        os.setsid()  # 6: new session and process group, no controlling terminal
        fork_and_exit_parent()  # 7, 8: from here on we are the daemon
        pipe.announce_pid(os.getpid())  # the starter can now kill us on --timeout
        redirect_stdio(settings.log_file)  # 9
        set_umask(settings.umask)  # 10
        change_directory(settings.workdir)  # 11
        pidfile = take_pidfile(settings)  # 12
        pipe.mark("pidfile")
        drop_privileges(settings.user)  # 13
        service.init(pidfile)  # the service's own setup: config, control socket, endpoints

    return become
