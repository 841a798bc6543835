"""Audit a running process against daemon(7): which of the daemon's steps its state shows.

:func:`audit` reads the process once (:mod:`daemonkit.procinfo`) and judges it step by step in
daemon(7)'s order; each check is one small function returning a :class:`Finding` that says
what the kernel shows and, in one line, why it matters. What the steps leave behind is visible
long after they ran:

1. no descriptor beyond 0-2 inherited: no terminal, no pipe another process holds;
2. no inherited ignored signal (``SigIgn``);   3. an empty signal mask (``SigBlk``);
4. a small environment without injection variables, secrets or login-session leftovers;
6. its own session, with no controlling terminal; 7. not the session leader;
8. its parent is init or a subreaper, not whoever started it;
9. 0-2 on ``/dev/null``, a file or a socket; 10. a umask; 11. a working directory that pins
   no mount; 12. a pidfile that names it and that it holds locked; 13. credentials that cannot
   be regained; and, new-style, the systemd unit it runs in.

Steps 14-15 (readiness) leave nothing in ``/proc``; ``daemonkit start`` measures them.

Kernel path: reads of ``/proc/PID/{stat,status,fd,fdinfo,environ,cwd,root,cgroup}``,
``/proc/locks``, and every process's ``fd`` links to find who else holds an inherited pipe.
Lifetime: reads only; nothing is created, signalled or held.
See also: daemon(7), proc(5), credentials(7), setsid(2), prctl(2) PR_SET_CHILD_SUBREAPER.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from daemonkit.daemon.checks import CHECKS, Context, Finding
from daemonkit.procinfo import ProcessView, descendants, fd_holders, read_process, systemd_unit

__all__ = ["Audit", "Finding", "KernelThreadError", "audit"]


class KernelThreadError(Exception):
    """The pid is a kernel thread (``str()`` is its name): it has no user space to audit."""


@dataclass
class Audit:
    """Every finding for one process, in daemon(7)'s order."""

    pid: int
    comm: str
    cmdline: list[str] | None
    findings: list[Finding] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> int:
        """0 everything holds, 1 something does not, 4 nothing fails but some could not be read."""
        statuses = {f.status for f in self.findings}
        return 1 if "fails" in statuses else 4 if "unknown" in statuses else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "comm": self.comm,
            "cmdline": self.cmdline,
            "code": self.code,
            "findings": [asdict(f) for f in self.findings],
            "unreadable": self.unreadable,
        }


def audit(pid: int, pidfile: Path | None = None) -> Audit:
    """Read *pid* and judge it. Raises ``ProcessLookupError`` if there is no such process,
    :class:`KernelThreadError` for a kernel thread."""
    p = read_process(pid)
    if p.kernel_thread:
        raise KernelThreadError(p.comm)
    ctx = Context(
        p=p,
        parent=_maybe(p.ppid) if p.ppid > 0 else None,
        leader=_maybe(p.sid) if p.sid not in (0, pid) else None,
        family={pid, *descendants(pid)},
        foreign={},
        unit=systemd_unit(p.cgroup),
        pidfile=pidfile,
    )
    if ctx.leader is not None and ctx.leader.sid != p.sid:
        ctx.leader = None  # that pid now belongs to an unrelated process: the leader is gone
    pipes = {f.target for f in p.fds or () if f.target.startswith("pipe:")}
    ctx.foreign = fd_holders(pipes, skip=ctx.family)
    result = Audit(pid, p.comm, p.cmdline, unreadable=dict(p.unreadable))
    for check in CHECKS:
        result.findings.append(check(ctx))
    return result


def _maybe(pid: int) -> ProcessView | None:
    try:
        return read_process(pid)
    except ProcessLookupError:
        return None
