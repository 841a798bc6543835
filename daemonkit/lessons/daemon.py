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
"Its parent is init" is checked too: the daemon's parent pid, and when it is not 1, who the
parent is. An orphan goes to the nearest ancestor marked as a *subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``: systemd --user, container runtimes, some shells' job
control) and only otherwise to pid 1, which in a container (a new PID namespace, ``NSpid``
in ``/proc/self/status``) is the container's own init.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from daemonkit.lessons.report import Table, Tick
from daemonkit.lessons.text import Tr
from daemonkit.lessons.verdict import Label, Verdict, by_checks
from daemonkit.runtime import proc_stat

__all__ = [
    "CLAIMS",
    "NAME",
    "Measurements",
    "explain",
    "parent_of",
    "proc_props",
    "run",
    "steps",
    "tables",
    "verdicts",
]

NAME = "daemon"
CLAIMS = ("C6",)

MARK = b"DKLESSON "  # prefixes the shell's report line among whatever else the pty shows
PROPS = ("pid", "ppid", "pgid", "sid", "leader", "tty", "cwd", "umask", "fds", "state")


class Measurements(TypedDict):
    """What ``run`` hands back (JSON data). ``before``/``after``: the ``/proc`` properties
    (:func:`proc_props`) of the shell, the job and the daemon; ``parent``: :func:`parent_of`."""

    started: bool
    start_rc: NotRequired[int]
    start_message: NotRequired[str]
    before: NotRequired[dict[str, Any]]
    after: NotRequired[dict[str, Any]]
    shell_signal: NotRequired[str | None]
    job_gone: NotRequired[bool]
    daemon_alive: NotRequired[bool]
    parent: NotRequired[dict[str, Any]]
    stop: NotRequired[str]


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


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _ancestors() -> list[int]:
    """This process's parent, its parent, ... up to pid 1 (or as far as /proc shows)."""
    out, pid = [], os.getppid()
    while pid > 1 and pid not in out:
        out.append(pid)
        try:
            pid = int(proc_stat(pid)[1])
        except (OSError, IndexError, ValueError):
            break
    return out


def parent_of(ppid: int) -> dict[str, Any]:
    """Who the daemon's parent is: init (pid 1) of this PID namespace, or a subreaper."""
    nspid = next(
        (
            ln.split()[1:]
            for ln in Path("/proc/self/status").read_text().splitlines()
            if ln.startswith("NSpid:")
        ),
        [],
    )
    return {
        "ppid": ppid,
        "comm": _comm(ppid),
        "is_init": ppid == 1,
        "init_comm": _comm(1),
        "container": len(nspid) > 1,  # our pid in more than one namespace: a nested one
        # The orphan went to this ancestor of ours instead of pid 1: it is a subreaper.
        "subreaper": ppid != 1 and ppid in _ancestors(),
    }


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 2


def run(quick: bool, tick: Tick) -> Measurements:
    m: Measurements = {"started": False}
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
            if before["daemon"] is not None:
                m["parent"] = parent_of(before["daemon"]["ppid"])
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


def checks(m: Measurements) -> dict[str, bool]:
    """The note's predictions about a daemon, checked against /proc."""
    shell, d = m["before"]["shell"], m["before"]["daemon"]
    return {
        "job_died": bool(m["job_gone"]),
        "daemon_survived": bool(m["daemon_alive"]),
        "no_tty": d["tty"] == "-",
        "own_session": d["sid"] != shell["sid"],
        "not_leader": d["sid"] != d["pid"],
        "parent_is_init": bool(m.get("parent", {}).get("is_init")),
    }


def verdicts(m: Measurements, facts: Mapping[str, Any]) -> list[Verdict]:
    if not m.get("started"):
        args = {"msg": m.get("start_message", "") or f"exit {m.get('start_rc')}"}
        return [Verdict("C6", "inconclusive", "verdict.daemon.nostart", "threshold.daemon", args)]
    d = m["before"]["daemon"]
    c = checks(m)
    label: Label = by_checks(c, essential=("daemon_survived",))
    parent = m.get("parent") or parent_of(d["ppid"])
    figures: dict[str, Any] = {
        "failed": [k for k, v in c.items() if not v],
        "sig": m.get("shell_signal") or "-",
        "dpid": d["pid"],
        "dsid": d["sid"],
        "ppid": parent["ppid"],
        "pcomm": parent["comm"],
        "init_comm": parent["init_comm"],
    }
    text = "verdict.daemon.survived" if c["daemon_survived"] else "verdict.daemon.died"
    extra = [
        "verdict.daemon.job_died" if c["job_died"] else "verdict.daemon.job_lived",
        "verdict.daemon.parent_init" if parent["is_init"] else "verdict.daemon.parent_other",
    ]
    if figures["failed"]:
        extra.append("verdict.failed")
    return [
        Verdict("C6", label, text, "threshold.daemon", figures, tuple(extra), explain(m, parent))
    ]


def explain(m: Measurements, parent: Mapping[str, Any]) -> tuple[str, ...]:
    """Why on this machine: who adopted the daemon, and why the second fork (by condition)."""
    why: list[str] = []
    if parent["is_init"] and parent["container"]:
        why.append("why.c6.container_init")  # pid 1 of a PID namespace: the container's init
    elif parent["is_init"]:
        why.append("why.c6.init")
    elif parent["subreaper"]:
        why.append("why.c6.subreaper")  # an ancestor took the orphan instead of init
    else:
        why.append("why.c6.other_parent")
    d = m["before"]["daemon"]
    if d["sid"] != d["pid"]:
        why.append("why.c6.second_fork")  # not a session leader: can never get a terminal
    return tuple(why)


def _fmt(p: dict[str, Any] | None, key: str, tr: Tr) -> str:
    if p is None:
        return tr("dm.gone")
    if key == "leader":
        return tr("yes") if p["leader"] else tr("no")
    if key == "fds":
        return " ".join(f"{fd}→{target}" for fd, target in p["fds"].items())
    return str(p[key])


def tables(m: Measurements, tr: Tr) -> list[Table]:
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


# -- this lesson's words, in both languages (the same keys; a test checks it) --------

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "claim.daemon": "C6 (守护进程): a daemon lives on when its terminal goes away; it is "
        "made by fork + parent exit and setsid, and its parent is init.",
        "method.daemon": "forkpty makes a session leader (a shell) on a pseudo-terminal; it "
        "starts a plain job (sleep, in its process group) and the demo daemon (daemonkit start). "
        "The master side is closed (hang-up); /proc shows who survived. The daemon forks twice: "
        "after setsid the first child is a session leader and could acquire a terminal again by "
        "opening one; the grandchild cannot.",
        "step.daemon.started": "daemon: job and daemon started from the pty",
        "step.daemon.hangup": "daemon: terminal hung up",
        "dm.title": "daemon(7) properties from /proc, before and after the hang-up",
        "dm.col.what": "what",
        "dm.col.value": "value",
        "dm.start": "daemonkit start failed",
        "dm.col.prop": "property",
        "dm.col.shell": "pty shell",
        "dm.col.job": "plain job",
        "dm.col.job_after": "job after",
        "dm.col.daemon": "daemon",
        "dm.col.daemon_after": "daemon after",
        "dm.prop.pid": "pid",
        "dm.prop.ppid": "parent pid",
        "dm.prop.pgid": "process group",
        "dm.gone": "gone",
        "dm.prop.sid": "session",
        "dm.prop.leader": "session leader",
        "dm.prop.tty": "controlling tty",
        "dm.prop.cwd": "cwd",
        "dm.prop.umask": "umask",
        "dm.prop.fds": "descriptors",
        "dm.prop.state": "state",
        "verdict.daemon.nostart": "The daemon could not be started: {msg}",
        "threshold.daemon": "holds: the plain job died, the daemon survived with no controlling "
        "terminal, in its own session but not its leader, adopted by init; does not hold: the "
        "daemon died; partly: anything between",
        "verdict.daemon.survived": "After the hang-up the shell died of {sig}; the daemon (pid "
        "{dpid}, session {dsid}) kept running.",
        "verdict.daemon.died": "After the hang-up the shell died of {sig}, and the daemon (pid "
        "{dpid}, session {dsid}) died too.",
        "verdict.daemon.job_died": "The plain job died with the terminal.",
        "verdict.daemon.job_lived": "The plain job survived the hang-up.",
        "verdict.daemon.parent_init": "The daemon's parent is pid 1 ({init_comm}).",
        "verdict.daemon.parent_other": "The daemon's parent is pid {ppid} ({pcomm}), not pid 1.",
        "why.c6.container_init": "Pid 1 here is {init_comm}, the first process of this "
        "container's PID namespace: orphans are re-parented to it as they would be to init.",
        "why.c6.init": "When the first child exited, the kernel re-parented its orphan, the "
        "daemon, to init (pid 1, {init_comm}).",
        "why.c6.subreaper": "Pid {ppid} ({pcomm}) is an ancestor of this run that acts as a "
        "subreaper (prctl PR_SET_CHILD_SUBREAPER, as systemd --user and container runtimes set): "
        "an orphan goes to the nearest subreaper, not to init.",
        "why.c6.other_parent": "Pid {ppid} ({pcomm}) is neither init nor an ancestor of this "
        "run: the daemon was not orphaned the way daemon(7) describes.",
        "why.c6.second_fork": "The daemon is not a session leader (session {dsid}, pid {dpid}): "
        "that is what the second fork is for, since only a session leader acquires a controlling "
        "terminal by opening one.",
    },
    "zh": {
        "claim.daemon": "C6（守护进程）：终端关闭后守护进程继续运行；它由 fork、父进程退出和 "
        "setsid 创建，其父进程是 init。",
        "method.daemon": "forkpty 在伪终端上创建一个会话首进程（相当于 shell）；它启动一个普通作"
        "业（sleep，在它的进程组里）和演示守护进程（daemonkit start）。关闭主设备端（挂断）后，从"
        " /proc 查看谁还活着。守护进程 fork 两次：setsid 之后第一个子进程是会话首进程，打开终端时"
        "可能再次获得控制终端；孙进程则不会。",
        "step.daemon.started": "daemon：已从伪终端启动作业和守护进程",
        "step.daemon.hangup": "daemon：终端已挂断",
        "dm.title": "从 /proc 读取的 daemon(7) 属性，挂断前后",
        "dm.col.what": "项目",
        "dm.col.value": "值",
        "dm.start": "daemonkit start 失败",
        "dm.col.prop": "属性",
        "dm.col.shell": "伪终端 shell",
        "dm.col.job": "普通作业",
        "dm.col.job_after": "挂断后的作业",
        "dm.col.daemon": "守护进程",
        "dm.col.daemon_after": "挂断后的守护进程",
        "dm.prop.pid": "pid",
        "dm.prop.ppid": "父进程 pid",
        "dm.prop.pgid": "进程组",
        "dm.gone": "已终止",
        "dm.prop.sid": "会话",
        "dm.prop.leader": "会话首进程",
        "dm.prop.tty": "控制终端",
        "dm.prop.cwd": "当前目录",
        "dm.prop.umask": "umask",
        "dm.prop.fds": "描述符",
        "dm.prop.state": "状态",
        "verdict.daemon.nostart": "无法启动守护进程：{msg}",
        "threshold.daemon": "成立：普通作业终止，守护进程存活，没有控制终端，拥有自己的会话但不是"
        "会话首进程，并由 init 收养；不成立：守护进程终止；介于两者之间为部分成立",
        "verdict.daemon.survived": "挂断后 shell 因 {sig} 终止；守护进程（pid {dpid}，会话 "
        "{dsid}）继续运行。",
        "verdict.daemon.died": "挂断后 shell 因 {sig} 终止，守护进程（pid {dpid}，会话 {dsid}）也"
        "终止了。",
        "verdict.daemon.job_died": "普通作业随终端一起终止。",
        "verdict.daemon.job_lived": "普通作业在挂断后仍然存活。",
        "verdict.daemon.parent_init": "守护进程的父进程是 1 号进程（{init_comm}）。",
        "verdict.daemon.parent_other": "守护进程的父进程是 {ppid} 号进程（{pcomm}），不是 1 号进"
        "程。",
        "why.c6.container_init": "这里的 1 号进程是 {init_comm}，即本容器 PID 命名空间中的第一个"
        "进程：孤儿进程会像交给 init 一样交给它收养。",
        "why.c6.init": "第一个子进程退出后，内核把成为孤儿的守护进程交给 init（1 号进程，"
        "{init_comm}）收养。",
        "why.c6.subreaper": "{ppid} 号进程（{pcomm}）是本次运行的祖先进程，起着子进程收割者（"
        "subreaper）的作用（prctl PR_SET_CHILD_SUBREAPER，systemd --user 和容器运行时都会设置）："
        "孤儿进程交给最近的收割者，而不是 init。",
        "why.c6.other_parent": "{ppid} 号进程（{pcomm}）既不是 init，也不是本次运行的祖先进程：守"
        "护进程并没有按 daemon(7) 所述的方式成为孤儿。",
        "why.c6.second_fork": "守护进程不是会话首进程（会话 {dsid}，pid {dpid}）：这正是第二次 "
        "fork 的目的，因为只有会话首进程打开终端时才会获得控制终端。",
    },
}
