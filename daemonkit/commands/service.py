"""``daemonkit start|stop|restart|status|reload|run``: the demo daemon's command line.

Exit codes follow the LSB init-script convention: ``status`` 0 running and answering, 1 dead
but the pidfile remains, 3 not running, 4 pidfile locked but no answer within 2 s; other
actions 0 success, 1 failure, 2 usage, 6 bad configuration, 7 not running (``reload``);
``stop`` of a daemon that is not running succeeds.

Every command finds the daemon the same way (:func:`daemonkit.service.locate.locate_daemon`):
the pidfile (``--pidfile``, default ``RUNTIME_DIR/daemonkit.pid``), whose *lock holder* the
kernel reports (the pid written in it could be stale), and ``control.sock`` in
``--runtime-dir``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import signal
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemonkit.commands.options import checked
from daemonkit.errors import DaemonkitError, NotRunningError, UsageError

if TYPE_CHECKING:
    from daemonkit.daemon.steps import User

__all__ = ["register"]


_octal = checked(
    lambda t: int(t, 8), lambda v: 0 <= v <= 0o777, "not an octal mask: {text!r}",
    "umask out of range: {text!r}",
)  # fmt: skip
_seconds = checked(
    float, lambda v: 0 < v <= 3600, "not a number of seconds: {text!r}",
    "timeout out of range (0, 3600]: {text!r}",
)  # fmt: skip
_lines = checked(
    int, lambda v: 0 <= v <= 10_000, "not a number of lines: {text!r}",
    "lines out of range [0, 10000]: {text!r}",
)  # fmt: skip


def _locate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime-dir", type=Path, help="sockets, FIFOs and pidfile (0700)")
    p.add_argument("--pidfile", type=Path, help="default: RUNTIME_DIR/daemonkit.pid")


def _service_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-file", type=Path, help="stdout/stderr, appended (default /dev/null)")
    p.add_argument("--config", type=Path, help="TOML configuration, re-read on SIGHUP")


def _start_opts(p: argparse.ArgumentParser) -> None:
    _locate(p)
    _service_opts(p)
    p.add_argument("--backend", choices=("native", "python-daemon"), default="native")
    p.add_argument("--umask", type=_octal, default=0o022, help="octal, default 022")
    p.add_argument("--workdir", type=Path, default=Path("/"), help="default /")
    p.add_argument("--user", help="drop privileges to this user (root only)")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="readiness deadline, s")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the pid and the fork-to-pid/pidfile/ready latencies (s) as JSON",
    )
    p.add_argument(
        "--keep-env",
        action="append",
        default=[],
        metavar="NAME",
        help="keep this variable (or fnmatch pattern) besides the default keep-list",
    )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add start, restart, stop, status, reload and run to the CLI."""
    p = sub.add_parser("start", help="start the demo daemon (double fork, daemon(7))")
    _start_opts(p)
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("restart", help="stop it if it runs, then start it with these options")
    _start_opts(p)
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("stop", help="stop it: SIGTERM, then SIGKILL after --timeout")
    _locate(p)
    p.add_argument("--timeout", type=_seconds, default=5.0)
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("status", help="is it running? (LSB exit codes 0/1/3/4)")
    _locate(p)
    p.add_argument("--json", action="store_true", help="print the daemon's status as JSON")
    p.add_argument(
        "-n", "--lines", type=_lines, default=10, help="last lines of the log to show (default 10)"
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("reload", help="re-read the configuration and reopen the log")
    _locate(p)
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("run", help="run the daemon in the foreground (systemd Type=notify)")
    _locate(p)
    _service_opts(p)
    p.set_defaults(func=cmd_run)


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from daemonkit.service.locate import daemon_paths

    return daemon_paths(args.runtime_dir, args.pidfile)


def _abs(path: Path | None) -> Path | None:
    """Absolute paths: the daemon changes directory (step 11) before it uses them."""
    return None if path is None else Path(os.path.abspath(path))


# -- start and run --------------------------------------------------------------------------


def cmd_start(args: argparse.Namespace) -> int:
    from daemonkit.daemon import native, pydaemon
    from daemonkit.daemon.steps import DEFAULT_KEEP_ENV, DaemonSettings
    from daemonkit.service.server import Service, ServiceOptions

    rdir, pidfile = _paths(args)
    opts = ServiceOptions(rdir, _abs(args.config), args.backend, _abs(args.log_file))
    settings = DaemonSettings(
        runtime_dir=rdir,
        pidfile=pidfile,
        reexec_argv=_start_argv(rdir, pidfile),
        log_file=opts.log_file,
        umask=args.umask,
        workdir=Path(os.path.abspath(args.workdir)),
        user=_resolve_user(args.user),
        keep_env=(*DEFAULT_KEEP_ENV, *args.keep_env),
        timeout=args.timeout,
        json_report=args.json,
    )

    service = Service(opts)  # initialised and served in the daemon, after the forks
    if args.backend == "python-daemon":
        return pydaemon.daemonize(settings, service)
    return native.daemonize(settings, service)


def _start_argv(rdir: Path, pidfile: Path) -> list[str]:
    """How step 4 runs this start again with a clean environment: the same command line
    (``restart`` as ``start``: it has stopped the old daemon already), and the runtime dir and
    pidfile as resolved now, since ``DAEMONKIT_RUNTIME_DIR``, ``XDG_RUNTIME_DIR`` and ``HOME``
    (the settings file) are not in the new environment; the last occurrence of an option wins."""
    argv = list(sys.argv[1:])
    if "restart" in argv:
        argv[argv.index("restart")] = "start"
    exe = [sys.executable, "-m", "daemonkit"]
    return [*exe, *argv, "--runtime-dir", str(rdir), "--pidfile", str(pidfile)]


def _resolve_user(name: str | None) -> User | None:
    from daemonkit.daemon.steps import User

    if name is None:
        return None
    if os.geteuid() != 0:
        raise UsageError("--user needs root (only root can change its uid)")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"--user: no such user {name!r}") from None
    return User(name, pw.pw_uid, pw.pw_gid, tuple(os.getgrouplist(name, pw.pw_gid)))


def cmd_run(args: argparse.Namespace) -> int:
    from daemonkit.daemon.pidfile import Pidfile
    from daemonkit.daemon.steps import prepare_log_dir, redirect_stdio
    from daemonkit.runtime import ensure_private_dir
    from daemonkit.service.server import Service, ServiceOptions

    rdir, pidfile_path = _paths(args)
    opts = ServiceOptions(rdir, _abs(args.config), "foreground", _abs(args.log_file))
    ensure_private_dir(rdir)
    prepare_log_dir(opts.log_file)
    if opts.log_file is not None:
        redirect_stdio(opts.log_file)
    pidfile = Pidfile(pidfile_path)
    pidfile.acquire()
    service = Service(opts)
    service.init(pidfile)  # on failure it has released everything, the pidfile included
    return service.serve()


def cmd_restart(args: argparse.Namespace) -> int:
    """stop (SIGTERM, then SIGKILL after --timeout), then start: LSB ``restart``."""
    cmd_stop(args)
    return cmd_start(args)


# -- stop, status, reload ----------------------------------------------------------------


def cmd_stop(args: argparse.Namespace) -> int:
    from daemonkit.service.control import CONTROL_SOCKET
    from daemonkit.service.locate import locate_daemon
    from daemonkit.service.trust import TrustedDir, UntrustedError, check_process_uid

    found = locate_daemon(args.runtime_dir, args.pidfile)
    pid, pidfile = found.pid, found.pidfile
    if pid is None:
        print("daemonkit: not running")
        return 0
    # Only a daemon in a runtime dir we trust, running as that dir's owner, is signalled.
    try:
        held = TrustedDir(found.runtime_dir, pidfile)
    except FileNotFoundError as exc:
        raise UntrustedError(
            f"pid {pid} holds {pidfile} but {found.runtime_dir} is missing"
        ) from exc
    with held:
        check_process_uid(pid, held.uid)
        try:
            os.kill(pid, signal.SIGTERM)
        except PermissionError as exc:
            raise DaemonkitError(
                f"not allowed to signal pid {pid} (another user's daemon)"
            ) from exc
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            # The kernel drops the lock when the daemon exits: that, not the pid, is the sign.
            if found.again().pid != pid:
                print(f"daemonkit: stopped (pid {pid}, SIGTERM)")
                return 0
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while found.again().pid == pid:  # SIGKILL cannot be ignored: the lock goes soon
            time.sleep(0.01)
        # It had no chance to remove them; unlinked through the held descriptor.
        names = [CONTROL_SOCKET]
        if pidfile.parent == found.runtime_dir:
            names.append(pidfile.name)
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=held.fd)
    print(f"daemonkit: killed (pid {pid}, SIGKILL after {args.timeout:g} s without exiting)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from daemonkit.daemon.pidfile import read_pid
    from daemonkit.service.client import daemon_status
    from daemonkit.service.locate import locate_daemon
    from daemonkit.service.trust import UntrustedError

    found = locate_daemon(args.runtime_dir, args.pidfile)
    rdir, pidfile, pid = found.runtime_dir, found.pidfile, found.pid
    code, state, info = 0, "running", {}
    if not found.pidfile_exists:
        code, state = 3, "not running"
    elif pid is None:
        code, state = 1, f"dead, but pidfile {pidfile} remains (pid {read_pid(pidfile)})"
    else:
        try:
            info = daemon_status(rdir, pidfile, timeout=2.0)
        except UntrustedError:
            raise  # not the daemon: one line, exit 1, never "running"
        except DaemonkitError as exc:  # no answer, refused, or a socket we may not open
            code, state = 4, f"pid {pid} holds the pidfile but does not answer: {exc}"
    extra = _overview(pid, info, args.lines) if code == 0 else {}
    if args.json:
        doc = {"code": code, "state": state, "status": info or None, **extra}
        print(json.dumps(doc, indent=2))
    elif code == 0:
        _print_status(info, extra, pidfile)
    else:
        print(f"daemonkit: {state}")
    return code


def _overview(pid: int | None, info: dict[str, Any], lines: int) -> dict[str, Any]:
    """What ``systemctl status`` adds to the daemon's own answer: since when, tasks, memory
    (from /proc/PID/status) and the log's last lines."""
    from daemonkit.procinfo import read_process

    out: dict[str, Any] = {"main_pid": pid, "tasks": None, "memory_rss_bytes": None}
    out["since"] = time.strftime(
        "%a %Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() - float(info["uptime_s"]))
    )
    with contextlib.suppress(ProcessLookupError):
        view = read_process(int(info["pid"]))
        out["tasks"] = int(view.status.get("Threads", "0")) or None
        rss = view.status.get("VmRSS", "").split()
        out["memory_rss_bytes"] = int(rss[0]) * 1024 if rss else None
    log = info.get("log_file")
    # The lines are read from the daemon's own stderr (/proc/PID/fd/2), not from the path its
    # reply names: a reply could name any file this (maybe root) command may read, while a
    # descriptor the daemon holds is one its own user could open already.
    stderr = Path(f"/proc/{int(info['pid'])}/fd/2")
    out["log_tail"] = _tail(stderr, lines) if log and lines > 0 and _regular(stderr) else []
    return out


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _tail(path: Path, lines: int) -> list[str]:
    """The last *lines* lines of *path* (read from the end; a log may be large)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError as exc:
        return [f"(log {path}: {exc.strerror})"]
    return [ln.decode(errors="replace") for ln in data.splitlines()[-lines:]]


def _log_losses(log: Any) -> str:
    """What the daemon could not write to its log (a full disk is counted, not fatal)."""
    if not isinstance(log, dict) or not log.get("failures"):
        return ""
    return f" ({log['failures']} lines lost, last: {log.get('last_error')})"


def _limits_line(limits: Any) -> str:
    """The daemon's limits and how often each was hit (see daemonkit.service.limits)."""
    if not isinstance(limits, dict):
        return "?"
    from daemonkit.units import fmt_size

    hits = {
        "refused": limits.get("control_clients_refused", 0),
        "accept back-offs": limits.get("accept_backoffs", {}).get("failures", 0),
        "over bytes in flight": limits.get("bytes_in_flight", {}).get("refused", 0),
        "over shm": limits.get("shm_bytes", {}).get("refused", 0),
    }
    return (
        f"{limits.get('control_clients')} clients ({limits.get('control_clients_per_uid')} per "
        f"user), {limits.get('sessions_per_client')} sessions each, "
        f"{limits.get('stream_clients')} unix-stream, "
        f"{fmt_size(int(limits.get('bytes_in_flight', {}).get('total', 0)))} in flight, "
        f"{fmt_size(int(limits.get('shm_bytes', {}).get('total', 0)))} shm, "
        f"{limits.get('message_deadline_s')} s per message; "
        + ", ".join(f"{v} {k}" for k, v in hits.items())
    )


def _print_status(info: dict[str, Any], extra: dict[str, Any], pidfile: Path) -> None:
    from daemonkit.units import fmt_size

    up = float(info["uptime_s"])
    print(
        f"daemonkit: running (pid {info['pid']}, backend {info['backend']}) "
        f"since {extra['since']}; {up:.1f} s ago"
    )
    rss = extra["memory_rss_bytes"]
    rows = [
        ("Name", f"{info['name']} (version {info['version']}, reloads {info['reloads']})"),
        ("Main PID", str(info["pid"])),
        ("Tasks", "?" if extra["tasks"] is None else str(extra["tasks"])),
        ("Memory", "?" if rss is None else f"{fmt_size(rss)} resident"),
        ("Runtime dir", info["runtime_dir"]),
        ("Pidfile", str(pidfile)),
        ("Config", info.get("config") or "(defaults)"),
        ("Log", (info.get("log_file") or "/dev/null") + _log_losses(info.get("log"))),
        ("Limits", _limits_line(info.get("limits"))),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:>{width}}: {value}")
    print(f"{'Endpoints':>{width}}:")
    for name, counters in info["endpoints"].items():
        print(f"{'':>{width}}  {name:<12} " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    if extra["log_tail"]:
        print()
        for line in extra["log_tail"]:
            print(line)


def cmd_reload(args: argparse.Namespace) -> int:
    from daemonkit.errors import ConfigError
    from daemonkit.service.client import request
    from daemonkit.service.locate import locate_daemon
    from daemonkit.service.trust import UntrustedError

    found = locate_daemon(args.runtime_dir, args.pidfile)
    if found.pid is None:
        raise NotRunningError("not running")
    pid = found.pid
    reply = request(found.runtime_dir, {"cmd": "reload"}, pidfile=found.pidfile)
    if "error" in reply:
        raise ConfigError(str(reply["error"]))
    if reply.get("ok") is not True:
        raise UntrustedError("reload reply: neither 'ok' nor 'error'")
    print(f"daemonkit: reloaded (pid {pid})")
    return 0
