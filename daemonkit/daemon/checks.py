"""The checks of ``daemonkit inspect``: one function per daemon(7) step, each a :class:`Finding`.

Each check reads the :class:`Context` (the process and the neighbours it needs, read once by
:func:`daemonkit.daemon.inspect.audit`) and says whether the step holds, what the kernel shows,
and in one line why it matters. :data:`CHECKS` lists them in daemon(7)'s order.

Facts about telling a reparented process from a started one: fork(2) copies the session id,
and only setsid(2) changes it (making the caller the leader). So a process that is *not* a
session leader and whose parent is in *another* session cannot have been forked by that
parent: it was reparented, and its parent is init or a child subreaper (PR_SET_CHILD_SUBREAPER
is not shown in ``/proc``; this is how it shows itself).

Facts about what cannot be told apart: an ignored or blocked signal, a umask or a pipe look the
same whether inherited or chosen. The checks fail only what a daemon would hardly choose (an
ignored SIGTERM, a pipe shared with a process outside its family) and show the rest.

Kernel path: none of its own; the facts come from :mod:`daemonkit.procinfo`, plus lstat(2) and
a read of the pidfile. Lifetime: reads only.
See also: daemon(7), proc(5), credentials(7), setsid(2), prctl(2) PR_SET_CHILD_SUBREAPER.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from daemonkit.daemon.pidfile import read_pid
from daemonkit.procinfo import FdView, ProcessView, locks_of, signal_names, tty_name

__all__ = ["CHECKS", "Context", "Finding", "Status"]

Status = Literal["holds", "fails", "unknown"]

# An ignored signal is harmful when it is one of these: how a daemon is stopped, reloaded or
# waits for its children. Others (SIGPIPE, SIGXFSZ by CPython; SIGUSR1 by a daemon that uses
# it; job control without a terminal) are often ignored on purpose: shown, not held against it.
_CONTROL_SIGNALS = {"SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGCHLD"}
_CONTROL = "HUP INT QUIT TERM CHLD"
# Names that change how a program loads or runs, hold secrets, or only a login session sets.
_INJECTION = ("LD_*", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5LIB", "PERL5OPT",
              "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "BASH_ENV", "ENV", "JAVA_TOOL_OPTIONS",
              "GCONV_PATH")  # fmt: skip
_SECRET = ("*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*API_KEY*", "*CREDENTIAL*",
           "*PRIVATE_KEY*")  # fmt: skip
_SESSION = ("SSH_*", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS",
            "TMUX", "STY", "TERM", "SHLVL", "OLDPWD", "SUDO_*")  # fmt: skip
_TERMINALS = ("/dev/pts/", "/dev/tty", "/dev/console", "/dev/ptmx")
# Parents that adopt orphans or supervise services, by comm (prctl's subreaper flag is hidden).
_MANAGERS = {"systemd", "init"}


@dataclass(frozen=True)
class Finding:
    """One daemon(7) property as the kernel shows it."""

    step: str  # daemon(7)'s step number(s), or "unit" for the new-style check
    name: str
    status: Status
    detail: str  # what was read
    why: str  # why it matters, one line


@dataclass
class Context:
    """The process and the neighbours some checks need, read once."""

    p: ProcessView
    parent: ProcessView | None
    leader: ProcessView | None  # the session leader, when another live process
    family: set[int]  # the process and its descendants: sharing a pipe with them is fine
    foreign: dict[str, list[int]]  # pipe link -> other pids (outside the family) holding it
    unit: str | None
    pidfile: Path | None


def _who(v: ProcessView | None, pid: int) -> str:
    if v is None:
        return f"pid {pid} (gone)"
    args = " ".join(v.cmdline[:3]) if v.cmdline else v.comm
    return f"pid {pid} ({args})"


def _cannot(step: str, name: str, ctx: Context, part: str, why: str) -> Finding:
    reason = ctx.p.unreadable.get(part, f"/proc/{ctx.p.pid}/{part} not readable")
    # As root, a refusal comes from ptrace's access check (a non-dumpable process, another
    # user namespace, a security module); otherwise from being another user.
    who = "refused even to root" if os.geteuid() == 0 else "root can"
    if "Permission denied" in reason or "Operation not permitted" in reason:
        reason += f" ({who})"
    return Finding(step, name, "unknown", f"cannot read: {reason}", why)


def _is_terminal(target: str) -> bool:
    return target.startswith(_TERMINALS)


def _shared(ctx: Context, fd: FdView) -> list[int]:
    return ctx.foreign.get(fd.target, [])


# -- 1-4: what the original process inherited ----------------------------------------------


def check_descriptors(ctx: Context) -> Finding:
    why = "an inherited terminal or pipe stays open as long as the daemon lives (a reader waits)"
    if ctx.p.fds is None:
        return _cannot("1", "descriptors", ctx, "fd", why)
    extra = [f for f in ctx.p.fds if f.fd > 2]
    bad = [
        f"{f.fd} -> {f.target}" + (f" (also open in pids {_pids(_shared(ctx, f))})"
                                   if _shared(ctx, f) else " (a terminal)")
        for f in extra
        if _is_terminal(f.target) or _shared(ctx, f)
    ]  # fmt: skip
    listing = ", ".join(f"{f.fd} -> {f.target}" for f in extra) or "none"
    if bad:
        return Finding("1", "descriptors", "fails", "inherited: " + "; ".join(bad), why)
    return Finding("1", "descriptors", "holds", f"{len(extra)} beyond 0-2: {listing}", why)


def _pids(pids: list[int]) -> str:
    return ", ".join(map(str, pids[:5])) + (" ..." if len(pids) > 5 else "")


def check_signal_dispositions(ctx: Context) -> Finding:
    why = "an ignored signal survives fork and exec: a nohup'd SIGHUP means reload never happens"
    ignored = signal_names(ctx.p.mask("SigIgn"))
    bad = [s for s in ignored if s in _CONTROL_SIGNALS]
    shown = ", ".join(ignored) or "none"
    if bad:
        return Finding("2", "signal dispositions", "fails", f"ignored: {', '.join(bad)}", why)
    return Finding("2", "signal dispositions", "holds", f"none of {_CONTROL} ignored "
                   f"(ignored: {shown})", why)  # fmt: skip


def check_signal_mask(ctx: Context) -> Finding:
    why = "the mask survives fork and exec: a blocked SIGTERM makes stop hang (unless signalfd)"
    blocked = signal_names(ctx.p.mask("SigBlk"))
    if blocked:
        return Finding("3", "signal mask", "fails", "blocked: " + ", ".join(blocked), why)
    return Finding("3", "signal mask", "holds", "nothing blocked", why)


def check_environment(ctx: Context) -> Finding:
    why = "loader and interpreter variables change what runs; secrets show in /proc/PID/environ"
    env = ctx.p.environ
    if env is None:
        return _cannot("4", "environment", ctx, "environ", why)
    size = f"{len(env)} variables, {ctx.p.environ_bytes} bytes"
    found = [
        f"{name} ({kind})"
        for name in sorted(env)
        for kind, patterns in (("injection", _INJECTION), ("secret?", _SECRET),
                               ("login session", _SESSION))
        if any(fnmatch.fnmatchcase(name, pat) for pat in patterns)
    ]  # fmt: skip
    if found:
        return Finding("4", "environment", "fails", f"{size}; suspicious: {', '.join(found)}", why)
    return Finding("4", "environment", "holds", f"{size}: {', '.join(sorted(env))}", why)


# -- 5-8: detached from the terminal and from whoever started it ---------------------------


def _service_main(ctx: Context) -> bool:
    """Started by a service manager as a unit's process (new-style: systemd did steps 5-8)."""
    return (
        ctx.unit is not None
        and ctx.unit.endswith(".service")
        and ctx.parent is not None
        and (ctx.p.ppid == 1 or ctx.parent.comm in _MANAGERS)
    )


def check_session(ctx: Context) -> Finding:
    why = "a process in the shell's session gets that session's SIGHUP when the terminal closes"
    p = ctx.p
    if p.sid == 0:
        return Finding("6", "session", "unknown", "session 0: outside this pid namespace", why)
    if p.sid == p.pid:
        return Finding("6", "session", "holds", f"its own session {p.sid} (it leads it)", why)
    if ctx.leader is None:
        return Finding(
            "6", "session", "holds", f"session {p.sid}, whose leader has exited (step 7)", why
        )
    return Finding(
        "6", "session", "fails", f"session {p.sid}, led by {_who(ctx.leader, p.sid)}", why
    )


def check_terminal(ctx: Context) -> Finding:
    why = "with a controlling terminal, its hangup and ^C/^Z reach the process"
    name = tty_name(ctx.p.tty_nr)
    if name is None:
        return Finding("6", "controlling terminal", "holds", "none", why)
    return Finding("6", "controlling terminal", "fails", name, why)


def check_session_leader(ctx: Context) -> Finding:
    why = "a session leader that opens a terminal (without O_NOCTTY) acquires it"
    p = ctx.p
    if p.sid != p.pid:
        return Finding("7", "not a session leader", "holds", f"pid {p.pid}, session {p.sid}", why)
    if _service_main(ctx):
        return Finding(
            "7", "not a session leader", "holds",
            f"leads session {p.sid}, as systemd makes every service (new-style, {ctx.unit})", why,
        )  # fmt: skip
    return Finding("7", "not a session leader", "fails", f"leads session {p.sid}", why)


def check_parent(ctx: Context) -> Finding:
    why = "a parent that started it can still wait for it, kill it or die with it"
    p, parent = ctx.p, ctx.parent
    if p.ppid == 0:
        return Finding("8", "parent", "holds", "outside this pid namespace (ppid 0)", why)
    who = _who(parent, p.ppid)
    if p.ppid == 1 or (parent is not None and parent.status.get("NSpid", "").split()[-1:] == ["1"]):
        return Finding("8", "parent", "holds", f"init: {who}", why)
    if parent is not None and p.sid != p.pid and parent.sid != p.sid:
        # fork copies the session: a non-leader in another session than its parent was adopted
        return Finding("8", "parent", "holds", f"a subreaper that adopted it: {who}", why)
    if parent is not None and _service_main(ctx):
        return Finding("8", "parent", "holds", f"its service manager: {who}", why)
    return Finding("8", "parent", "fails", f"{who}, which started it (same session)", why)


# -- 9-13: what the daemon itself sets up ----------------------------------------------------


def check_stdio(ctx: Context) -> Finding:
    why = "a terminal goes away (EIO), a pipe's reader waits, a closed 0-2 goes to the next open()"
    if ctx.p.fds is None:
        return _cannot("9", "standard streams", ctx, "fd", why)
    fds = {f.fd: f for f in ctx.p.fds}
    shown, bad = [], []
    for n in (0, 1, 2):
        f = fds.get(n)
        if f is None:
            bad.append(f"{n} closed")
        elif _is_terminal(f.target):
            bad.append(f"{n} -> {f.target} (a terminal)")
        elif _shared(ctx, f):
            bad.append(f"{n} -> {f.target} (also open in pids {_pids(_shared(ctx, f))})")
        else:
            shown.append(f"{n} -> {f.target}")
    if bad:
        return Finding("9", "standard streams", "fails", "; ".join(bad + shown), why)
    return Finding("9", "standard streams", "holds", ", ".join(shown), why)


def check_umask(ctx: Context) -> Finding:
    why = "an inherited umask (002 from a login shell) makes the daemon's files group-writable"
    text = ctx.p.status.get("Umask")
    if text is None:
        return Finding("10", "umask", "unknown", "not in /proc/PID/status (kernel < 4.7)", why)
    mask = int(text, 8)
    if mask == 0:
        return Finding("10", "umask", "holds", "0000: open()'s modes decide (daemon(7))", why)
    if mask & 0o022 == 0o022:
        return Finding("10", "umask", "holds", f"{mask:04o}: no group or world write", why)
    return Finding("10", "umask", "fails", f"{mask:04o}: lets group or others write", why)


def check_workdir(ctx: Context) -> Finding:
    why = "a working directory keeps its file system busy: it cannot be unmounted"
    p = ctx.p
    if p.cwd is None or p.cwd_dev is None:
        return _cannot("11", "working directory", ctx, "cwd", why)
    if p.cwd.endswith(" (deleted)"):
        return Finding("11", "working directory", "fails", p.cwd, why)
    if p.cwd == "/" or p.cwd_dev == p.root_dev:
        return Finding("11", "working directory", "holds", f"{p.cwd} (the root file system)", why)
    return Finding("11", "working directory", "fails", f"{p.cwd}: another file system than /", why)


def check_pidfile(ctx: Context) -> Finding:
    why = "only a kernel lock held for life tells a live instance from a stale or reused pid"
    locked = {(lk.dev, lk.ino) for lk in locks_of(ctx.p.pid) if lk.kind in ("POSIX", "FLOCK")}
    if ctx.pidfile is not None:
        return _named_pidfile(ctx.pidfile, ctx.p.pid, locked, why)
    if ctx.p.fds is None:
        return _cannot("12", "pidfile", ctx, "fd", why)
    for f in ctx.p.fds:
        if (f.dev, f.ino) in locked and _pid_in(f"/proc/{ctx.p.pid}/fd/{f.fd}") == ctx.p.pid:
            return Finding("12", "pidfile", "holds", f"{f.target}: its pid, locked by it", why)
    held = f"it holds {len(locked)} lock(s), none on a file naming it" if locked else "no lock"
    return Finding("12", "pidfile", "fails", f"no locked pidfile found ({held})", why)


def _named_pidfile(path: Path, pid: int, locked: set[tuple[int, int]], why: str) -> Finding:
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Finding("12", "pidfile", "fails", f"{path}: {exc.strerror}", why)
    if stat.S_ISLNK(st.st_mode):
        return Finding("12", "pidfile", "fails", f"{path} is a symlink", why)
    written = read_pid(path)
    if written != pid:
        return Finding("12", "pidfile", "fails", f"{path} names pid {written}, not {pid}", why)
    if (st.st_dev, st.st_ino) not in locked:
        return Finding("12", "pidfile", "fails", f"{path} names it, but it holds no lock", why)
    return Finding("12", "pidfile", "holds", f"{path}: its pid, locked by it", why)


def _pid_in(path: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return int(os.pread(fd, 32, 0))
        finally:
            os.close(fd)
    return None


def check_credentials(ctx: Context) -> Finding:
    why = "a saved uid, kept capabilities or root's group let a compromised daemon regain power"
    p = ctx.p
    uids, gids, groups = p.ids("Uid"), p.ids("Gid"), p.ids("Groups")
    detail = (
        f"uid {'/'.join(map(str, uids[:3]))}, gid {'/'.join(map(str, gids[:3]))}"
        f" (real/effective/saved), groups {groups or 'none'}, CapEff {p.mask('CapEff'):x}"
    )
    if not uids:
        return Finding("13", "credentials", "unknown", "no Uid line in status", why)
    if uids[1] == 0:
        caps = "no capabilities left" if not p.mask("CapEff") else "privileges not dropped"
        return Finding("13", "credentials", "holds", f"root, {caps}: {detail}", why)
    bad = []
    if len(set(uids[:3])) > 1:
        bad.append("real/effective/saved uids differ (it can switch back)")
    if len(set(gids[:3])) > 1:
        bad.append("real/effective/saved gids differ")
    if p.mask("CapPrm") or p.mask("CapAmb"):
        bad.append("capabilities kept")
    if 0 in groups:
        bad.append("root's group 0 kept (setgroups skipped)")
    if bad:
        return Finding("13", "credentials", "fails", "; ".join(bad) + f": {detail}", why)
    return Finding("13", "credentials", "holds", detail, why)


def check_unit(ctx: Context) -> Finding:
    why = "a login session's scope is ended at logout (KillUserProcesses=yes); a unit is managed"
    unit = ctx.unit
    if unit is None:
        where = next((ln.split(":", 2)[2] for ln in ctx.p.cgroup if ln.startswith("0::")), "?")
        return Finding("unit", "systemd unit", "holds", f"none (cgroup {where})", why)
    if unit.startswith("session-") and unit.endswith(".scope"):
        return Finding("unit", "systemd unit", "fails", f"{unit}: a login session", why)
    return Finding("unit", "systemd unit", "holds", unit, why)


CHECKS: tuple[Callable[[Context], Finding], ...] = (
    check_descriptors,
    check_signal_dispositions,
    check_signal_mask,
    check_environment,
    check_session,
    check_terminal,
    check_session_leader,
    check_parent,
    check_stdio,
    check_umask,
    check_workdir,
    check_pidfile,
    check_credentials,
    check_unit,
)
