"""``daemonkit inspect PID | --pidfile FILE | --unit NAME [--json]``: audit any running daemon.

Reads the process from ``/proc`` and prints daemon(7)'s steps in order, each with what holds or
not and why it matters (:mod:`daemonkit.daemon.inspect`). Exit codes: 0 every step holds,
1 some step does not, 3 no such process, 4 nothing fails but some parts could not be read
(another user's process, not run as root), 2 usage.

The process is found by pid, by the pidfile's *lock holder* (the kernel's answer; the pid
written in an unlocked file otherwise), or by asking systemd for a unit's ``MainPID`` (and its
``PIDFile=``, which is then checked too).

*Kernel path*: see :mod:`daemonkit.procinfo`; ``--unit`` runs ``systemctl show``.
*Lifetime*: reads only. *See also*: daemon(7), proc(5), systemctl(1).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemonkit.commands.options import checked
from daemonkit.errors import DaemonkitError, NoSuchProcessError, UsageError

if TYPE_CHECKING:
    from daemonkit.daemon.inspect import Audit

__all__ = ["register"]

_MARK = {"holds": "ok", "fails": "FAIL", "unknown": "??"}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``daemonkit inspect``."""
    p = sub.add_parser(
        "inspect",
        help="audit a running process against daemon(7), step by step",
        description="Read a running process from /proc and report, in daemon(7)'s order, "
        "which of a daemon's properties hold. Exit 0 all hold, 1 some do not, 3 no such "
        "process, 4 some could not be read (not root).",
    )
    p.add_argument("pid", nargs="?", type=_pid, help="the process to audit")
    p.add_argument("--pidfile", type=Path, help="audit the process holding this pidfile")
    p.add_argument("--unit", help="audit a systemd unit's main process")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=run)


_pid = checked(int, lambda v: v > 0, "not a pid: {text!r}")


def run(args: argparse.Namespace) -> int:
    from daemonkit.daemon.inspect import KernelThreadError, audit

    given = [x for x in (args.pid, args.pidfile, args.unit) if x is not None]
    if len(given) != 1:
        raise UsageError("inspect: give exactly one of PID, --pidfile FILE, --unit NAME")
    pidfile: Path | None = args.pidfile
    if args.unit is not None:
        pid, pidfile = _unit_pid(args.unit)
    elif pidfile is not None:
        pid = _pidfile_pid(pidfile)
    else:
        pid = args.pid
    try:
        result = audit(pid, pidfile)
    except ProcessLookupError:
        raise NoSuchProcessError(f"no such process: {pid}") from None
    except KernelThreadError as exc:
        raise UsageError(
            f"pid {pid} ({exc}) is a kernel thread: daemon(7) is about processes"
        ) from None
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _print(result)
    return result.code


def _pidfile_pid(path: Path) -> int:
    from daemonkit.daemon.pidfile import read_pid
    from daemonkit.service.locate import pidfile_holder

    exists, pid = pidfile_holder(path)
    if not exists:
        raise NoSuchProcessError(f"no such process: pidfile {path} does not exist")
    pid = pid or read_pid(path)  # unlocked: the pid written in it, to show what went wrong
    if not pid:
        raise NoSuchProcessError(f"no such process: pidfile {path} is unlocked and names none")
    return pid


def _unit_pid(unit: str) -> tuple[int, Path | None]:
    if shutil.which("systemctl") is None:
        raise DaemonkitError("--unit needs systemctl, which is not installed")
    done = subprocess.run(
        ["systemctl", "show", "--property=MainPID", "--property=PIDFile", "--", unit],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise DaemonkitError(f"systemctl show {unit}: {why}")
    props = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    pid = int(props.get("MainPID") or 0)
    if pid == 0:
        raise NoSuchProcessError(f"no such process: unit {unit} has no main process")
    pidfile = props.get("PIDFile") or None
    return pid, Path(pidfile) if pidfile else None


def _print(result: Audit) -> None:
    cmd = " ".join(result.cmdline) if result.cmdline else result.comm
    print(f"pid {result.pid}: {cmd}")
    width = max(len(f.name) for f in result.findings)
    for f in result.findings:
        print(f"  {_MARK[f.status]:<4} {f.step:>4}  {f.name:<{width}}  {f.detail}")
        print(f"  {'':<4} {'':>4}  {'':<{width}}  why: {f.why}")
    failed = [f.name for f in result.findings if f.status == "fails"]
    unknown = [f.name for f in result.findings if f.status == "unknown"]
    if failed:
        print(f"{len(failed)} of {len(result.findings)} do not hold: {', '.join(failed)}")
    if unknown:
        print(f"could not read {', '.join(unknown)}: {'; '.join(result.unreadable.values())}")
    if not failed and not unknown:
        print(f"all {len(result.findings)} hold")
