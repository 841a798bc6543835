"""C6: a daemon lives on without its terminal (守护进程).

A login session in miniature: ``forkpty(3)`` makes a child that is a session leader with a
pseudo-terminal as its controlling terminal (a shell, in effect). That "shell" starts

* a plain background job (``/bin/sleep``), left in the shell's process group, as a script's
  ``cmd &`` is, and
* the demo daemon, with ``daemonkit start --runtime-dir DIR`` (daemon(7)'s steps: fork and let
  the parent exit, ``setsid`` for a new session without a terminal, fork again so the daemon
  is not a session leader and can never acquire a controlling terminal, ``umask``, ``chdir
  /``, standard descriptors on ``/dev/null``).

Then the terminal hangs up: this process closes the pty's master side. The kernel sends
SIGHUP to the session leader (tty_vhangup) and, when that leader exits, to the terminal's
foreground process group, the plain job included; the default action of SIGHUP ends both.
The daemon is in another session with no terminal: nothing is sent to it.

Before and after the hangup, each process's daemon(7) properties are read from ``/proc``:
session, process group, controlling terminal (``tty_nr``), parent, cwd, umask, descriptors.
The daemon is stopped with ``daemonkit stop`` afterwards, and every process this lesson made
is gone when it returns, on every path.

Kernel path: forkpty(3) (openpty, fork, setsid, TIOCSCTTY), close(2) of the master (the
kernel's tty hangup), reads of ``/proc/PID/{stat,status,cwd,fd}``.
Lifetime: the shell is reaped, the job killed if it survived, the daemon stopped with
``daemonkit stop`` (SIGTERM, then SIGKILL, if that fails), the runtime dir removed.

See also: daemon(7), credentials(7) (sessions, process groups), setsid(2), forkpty(3),
pty(7), proc(5) (``stat`` fields 4-7, ``status`` Umask).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daemonkit.lessons.report import Table, Tick, Verdict
from daemonkit.lessons.text import Tr
from daemonkit.runtime import proc_stat

__all__ = ["CLAIMS", "NAME", "proc_props", "run", "steps", "tables", "verdicts"]

NAME = "daemon"
CLAIMS = ("C6",)

MARK = b"DKLESSON "  # prefixes the shell's report line among whatever else the pty shows
PROPS = ("pid", "ppid", "pgid", "sid", "leader", "tty", "cwd", "umask", "fds", "state")


def _tty_name(tty_nr: int) -> str:
    """Decode ``tty_nr`` (proc(5)): major in bits 15-8, minor in 31-20 and 7-0."""
    if tty_nr == 0:
        return "-"
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:  # Unix98 pty slaves
        return f"pts/{(major - 136) * 256 + minor}"
    return f"{major}:{minor}"


def proc_props(pid: int) -> dict[str, Any] | None:
    """The daemon(7) properties of *pid* as ``/proc`` shows them; None if it is gone."""
    base = Path(f"/proc/{pid}")
    try:
        fields = proc_stat(pid)  # after "(comm)": state, ppid, pgrp, session...
        status = (base / "status").read_text()
        if fields[0] in ("Z", "X"):
            return None  # exited, not yet reaped
        umask = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Umask:")), None)
        if umask is None:
            return None  # caught in the middle of exit(2): its fs_struct is already gone
        fds = {}
        for fd in sorted(os.listdir(base / "fd"), key=int):
            with contextlib.suppress(OSError):
                fds[fd] = os.readlink(base / "fd" / fd)
        cwd = os.readlink(base / "cwd")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return {
        "pid": pid,
        "state": fields[0],
        "ppid": int(fields[1]),
        "pgid": int(fields[2]),
        "sid": int(fields[3]),
        "leader": int(fields[3]) == pid,  # a session leader can acquire a controlling tty
        "tty": _tty_name(int(fields[4])),
        "cwd": cwd,
        "umask": umask,
        "fds": fds,
        "starttime": int(fields[19]),
    }


def _shell(runtime_dir: Path, workdir: Path) -> None:
    """The session leader on the pty: start the job and the daemon, report, wait for input."""
    os.chdir(workdir)
    os.umask(0o027)  # a umask the daemon must not keep
    # A login shell starts with SIGHUP at its default action; an "ignore" inherited from
    # whoever started daemonkit (nohup, say) would otherwise pass to the job and hide the effect.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    job = os.fork()
    if job == 0:
        try:
            os.execv("/bin/sleep", ["sleep", "300"])  # same process group: the foreground
        finally:
            os._exit(127)
    start = subprocess.run(
        [sys.executable, "-m", "daemonkit", "start", "--runtime-dir", str(runtime_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    report = {"job": job, "rc": start.returncode, "err": (start.stderr or start.stdout).strip()}
    os.write(1, MARK + json.dumps(report).encode() + b"\n")
    while os.read(0, 1024):  # a shell waiting at its prompt; EIO or EOF after the hangup
        pass


def _read_report(master: int, timeout: float) -> dict[str, Any]:
    data = b""
    deadline = time.monotonic() + timeout
    while MARK not in data or not data.split(MARK, 1)[1].count(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            raise TimeoutError("the pty shell did not report")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the slave side is closed, the shell is gone
            chunk = b""
        if not chunk:
            raise RuntimeError(f"the pty shell ended early: {data.decode(errors='replace')}")
        data += chunk
    line = data.split(MARK, 1)[1].split(b"\n", 1)[0]
    report: dict[str, Any] = json.loads(line.strip())
    return report


def _daemon_pid(runtime_dir: Path) -> int | None:
    """The daemon's pid from its pidfile in *runtime_dir* (the only ``*.pid`` file there)."""
    for path in sorted(runtime_dir.glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().split()[0])
    return None


def _gone(pid: int, starttime: int, timeout: float) -> bool:
    """True once *pid* (the process started at *starttime*) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = proc_props(pid)
        if p is None or p["starttime"] != starttime:
            return True
        time.sleep(0.02)
    return False


def _stop_daemon(runtime_dir: Path, pid: int | None, starttime: int | None) -> str:
    """Stop it with the CLI; if that does not work, SIGTERM and then SIGKILL by pid."""
    said = "not started"
    if runtime_dir.exists():
        done = subprocess.run(
            [sys.executable, "-m", "daemonkit", "stop", "--runtime-dir", str(runtime_dir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        said = f"daemonkit stop: exit {done.returncode}"
    if pid is not None and starttime is not None and not _gone(pid, starttime, 2.0):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if _gone(pid, starttime, 2.0):
                said += f"; needed {sig.name}"
                break
    # Interrupted half-way (Ctrl-C during `daemonkit start`), a daemon may be coming up with
    # no pidfile yet: anything whose command line names our runtime dir is ours to end.
    for leftover in _naming(runtime_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
        said += f"; killed leftover {leftover}"
    return said


def _naming(runtime_dir: Path) -> list[int]:
    """Pids of processes whose command line contains *runtime_dir*."""
    needle = str(runtime_dir).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 2


def run(quick: bool, tick: Tick) -> dict[str, Any]:
    m: dict[str, Any] = {"started": False}
    with tempfile.TemporaryDirectory(prefix="dk-lesson-") as tmp:
        runtime_dir = Path(tmp) / "run"
        shell, master = os.forkpty()  # the child: a new session, the pty its terminal
        if shell == 0:
            code = 0
            try:
                _shell(runtime_dir, Path(tmp))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        job: int | None = None
        job_start: int | None = None
        dpid: int | None = None
        dstart: int | None = None
        try:
            report = _read_report(master, 40)
            job = int(report["job"])
            m["start_rc"] = report["rc"]
            m["start_message"] = report["err"][-300:]
            dpid = _daemon_pid(runtime_dir) if report["rc"] == 0 else None
            before = {"shell": proc_props(shell), "job": proc_props(job)}
            before["daemon"] = proc_props(dpid) if dpid else None
            job_start = before["job"]["starttime"] if before["job"] else None
            dstart = before["daemon"]["starttime"] if before["daemon"] else None
            m["started"] = before["daemon"] is not None
            m["before"] = before
            tick("step.daemon.started")
            os.close(master)  # hang up: the pty's slave side sees the hangup
            master = -1
            _, status = os.waitpid(shell, 0)
            shell = 0
            m["shell_signal"] = (
                signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else None
            )
            m["job_gone"] = job_start is not None and _gone(job, job_start, 3.0)
            time.sleep(0.1)  # give a daemon that would die time to do so
            after = {"job": None if m["job_gone"] else proc_props(job)}
            after["daemon"] = proc_props(dpid) if dpid else None
            m["after"] = after
            m["daemon_alive"] = (
                after["daemon"] is not None and after["daemon"]["starttime"] == dstart
            )
            tick("step.daemon.hangup")
        finally:
            if master >= 0:
                os.close(master)
            if shell:  # interrupted: the shell's process group holds `daemonkit start` too
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(shell, signal.SIGKILL)
                os.waitpid(shell, 0)
            if job is not None and job_start is not None and not _gone(job, job_start, 0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job, signal.SIGKILL)
            m["stop"] = _stop_daemon(runtime_dir, dpid, dstart)
    return m


def verdicts(m: dict[str, Any]) -> list[Verdict]:
    if not m.get("started"):
        args = {"msg": m.get("start_message", "") or f"exit {m.get('start_rc')}"}
        return [Verdict("C6", "inconclusive", "verdict.daemon.nostart", "threshold.daemon", args)]
    shell, d = m["before"]["shell"], m["before"]["daemon"]
    checks = {
        "job_died": bool(m["job_gone"]),
        "daemon_survived": bool(m["daemon_alive"]),
        "no_tty": d["tty"] == "-",
        "own_session": d["sid"] != shell["sid"],
        "not_leader": d["sid"] != d["pid"],
    }
    if not checks["daemon_survived"]:
        label: Any = "does not hold"
    elif all(checks.values()):
        label = "holds"
    else:
        label = "partly holds"
    args = {
        "failed": ", ".join(k for k, v in checks.items() if not v) or "-",
        "sig": m.get("shell_signal") or "-",
        "dpid": d["pid"],
        "dsid": d["sid"],
        "ppid": d["ppid"],
    }
    return [Verdict("C6", label, "verdict.daemon", "threshold.daemon", args)]


def _fmt(p: dict[str, Any] | None, key: str, tr: Tr) -> str:
    if p is None:
        return tr("dm.gone")
    if key == "leader":
        return tr("yes") if p["leader"] else tr("no")
    if key == "fds":
        return " ".join(f"{fd}→{target}" for fd, target in p["fds"].items())
    return str(p[key])


def tables(m: dict[str, Any], tr: Tr) -> list[Table]:
    if not m.get("started"):
        return [
            Table(
                "dm.title",
                ("dm.col.what", "dm.col.value"),
                [[tr("dm.start"), m.get("start_message", "")]],
            )
        ]
    b, a = m["before"], m["after"]
    cols = (
        "dm.col.prop",
        "dm.col.shell",
        "dm.col.job",
        "dm.col.job_after",
        "dm.col.daemon",
        "dm.col.daemon_after",
    )
    rows = [
        [
            tr("dm.prop." + k),
            _fmt(b["shell"], k, tr),
            _fmt(b["job"], k, tr),
            _fmt(a["job"], k, tr),
            _fmt(b["daemon"], k, tr),
            _fmt(a["daemon"], k, tr),
        ]
        for k in PROPS
    ]
    return [Table("dm.title", cols, rows)]
