"""The daemonizer, checked from outside: what /proc shows of a daemon each backend started.

Each test starts ``daemonkit start`` as a real process (with a stray descriptor, blocked and
ignored signals and a polluted environment to undo), then reads the daemon's /proc entries.
The docstring of each test names the daemon(7) step it proves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    BACKENDS,
    CLI,
    Daemons,
    daemons_fixture,
    dk,
    gone,
    proc_stat,
    proc_status,
    read_pid,
    wait_until,
)
from facilities import need

SIGMASK_BITS = lambda *sigs: sum(1 << (s - 1) for s in sigs)  # noqa: E731


def _hostile_parent() -> None:
    """Runs in the starter before exec: the state a careless parent might hand down."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2})
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


@pytest.mark.parametrize("backend", BACKENDS)
def test_daemon_properties_in_proc(daemons: Daemons, backend: str) -> None:
    """Steps 1-15: every property daemon(7) asks for, as the kernel shows it."""
    base = daemons.base
    workdir = base / "work"
    workdir.mkdir()
    log = base / "daemon.log"
    stray = base / "stray-fd"
    stray_fd = os.open(stray, os.O_WRONLY | os.O_CREAT, 0o600)  # inheritable: no O_CLOEXEC
    env = {**os.environ, "DK_SECRET": "leak", "LANG": "C.UTF-8", "LD_BIND_NOW": "1"}
    try:
        starter = subprocess.Popen(
            [*CLI, "start", *daemons.loc(), "--backend", backend, "--log-file", str(log),
             "--umask", "027", "--workdir", str(workdir)],
            env=env, pass_fds=(stray_fd,), preexec_fn=_hostile_parent,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out, err = starter.communicate(timeout=30)
    finally:
        os.close(stray_fd)
    pid = daemons.pid()
    # 14-15: the starter exits 0 only once the daemon is ready, and says so.
    assert starter.returncode == 0, err
    assert f"started (pid {pid})" in out
    stat = proc_stat(pid)
    ppid, pgrp, sid, tty_nr = (int(x) for x in stat[1:5])
    # 5, 7, 8: the daemon is a grandchild; neither the starter's nor ours.
    assert ppid not in (starter.pid, os.getpid())
    # 6, 7: a new session (not ours), and the daemon is not its leader (sid != pid).
    assert sid != pid and sid != os.getsid(0)
    assert pgrp != pid
    assert tty_nr == 0  # no controlling terminal
    status = proc_status(pid)
    # 2, 3: the blocked mask and the ignored SIGUSR2 did not survive.
    assert int(status["SigBlk"], 16) == 0
    assert not int(status["SigIgn"], 16) & SIGMASK_BITS(signal.SIGUSR2)
    assert int(status["SigCgt"], 16) & SIGMASK_BITS(signal.SIGTERM, signal.SIGHUP)
    # 10, 11: umask and working directory as configured.
    assert status["Umask"] == "0027"
    assert os.readlink(f"/proc/{pid}/cwd") == str(workdir)
    # 1, 9: stdin from /dev/null, stdout/stderr to the log; nothing inherited beyond that.
    fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert fds[0] == "/dev/null"
    assert fds[1] == fds[2] == str(log)
    assert str(stray) not in fds.values()
    # One /dev/null above 2: the control loop's spare, given up at EMFILE (service/server.py).
    assert sum(1 for fd, target in fds.items() if fd > 2 and target == "/dev/null") <= 1
    for fd, target in fds.items():
        if fd > 2:  # only what the daemon made itself, each close-on-exec
            # the pidfile, the runtime dir held open (O_PATH), sockets, pipes, epoll, eventfd
            assert target in (str(daemons.pidfile), str(daemons.rdir), "/dev/null") or target.split(
                ":"
            )[0] in ("pipe", "socket", "anon_inode"), (fd, target)  # fmt: skip
            flags = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
            assert int(flags, 8) & os.O_CLOEXEC, (fd, target)
    # 4: the environment block the kernel shows holds only the keep-list.
    environ = dict(
        e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if e
    )
    assert environ == {"LANG": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"}
    # 12: the pidfile holds the daemon's pid and the daemon holds a POSIX lock on it.
    assert read_pid(daemons.pidfile) == pid
    inode = os.stat(daemons.pidfile).st_ino
    locks = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
    assert any(
        f[1:4] == ["POSIX", "ADVISORY", "WRITE"] and int(f[4]) == pid
        and int(f[5].split(":")[2]) == inode
        for f in locks
    ), "pidfile not locked by the daemon"  # fmt: skip
    assert "ready" in log.read_text()
    res = dk("stop", *daemons.loc())
    assert res.returncode == 0 and "SIGTERM" in res.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_twice_fails_and_leaves_the_first(daemons: Daemons, backend: str) -> None:
    """12: the lock, not a check-then-write, refuses a second instance."""
    daemons.start("--backend", backend)
    first = daemons.pid()
    res = daemons.start("--backend", backend, check=False)
    assert res.returncode != 0
    assert res.stderr == f"daemonkit: already running (pid {first})\n"
    assert not gone(first) and read_pid(daemons.pidfile) == first
    assert dk("status", *daemons.loc()).returncode == 0
    assert dk("stop", *daemons.loc()).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_stale_pidfile_after_sigkill_is_taken_over(daemons: Daemons, backend: str) -> None:
    """12: an unlocked pidfile is stale (LSB status 1), and the next start takes it over."""
    daemons.start("--backend", backend)
    first = daemons.pid()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: gone(first), what="daemon to die")
    assert daemons.pidfile.exists()
    res = dk("status", *daemons.loc())
    assert res.returncode == 1 and "dead, but pidfile" in res.stdout
    left = [e for e in os.listdir(daemons.rdir) if e.startswith(f"dk.{first}.")]
    assert left  # the killed daemon's endpoint sockets
    daemons.start("--backend", backend)
    second = daemons.pid()
    assert second != first and not gone(second)
    assert not [e for e in os.listdir(daemons.rdir) if e.startswith(f"dk.{first}.")]
    assert dk("status", *daemons.loc()).returncode == 0
    assert dk("stop", *daemons.loc()).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_removes_pidfile_and_socket(daemons: Daemons, backend: str) -> None:
    """SIGTERM: graceful exit within 1 s (no SIGKILL needed), files removed, dir empty."""
    daemons.start("--backend", backend)
    pid = daemons.pid()
    assert (daemons.rdir / "control.sock").exists()
    res = dk("stop", *daemons.loc(), "--timeout", "1")
    assert res.returncode == 0
    assert res.stdout == f"daemonkit: stopped (pid {pid}, SIGTERM)\n"
    wait_until(lambda: gone(pid), what="daemon to exit")
    assert os.listdir(daemons.rdir) == []
    # Stopping a stopped daemon is a success (LSB).
    res = dk("stop", *daemons.loc())
    assert res.returncode == 0 and "not running" in res.stdout


def test_failed_initialization_is_reported_by_start(daemons: Daemons) -> None:
    """14: the daemon's own one-line reason reaches the starter, which exits non-zero."""
    bad = daemons.base / "bad.toml"
    bad.write_text("name = \n")
    res = daemons.start("--config", bad, check=False)
    assert res.returncode == 6  # LSB: not configured
    assert res.stderr.startswith(f"daemonkit: config {bad}: ") and res.stderr.count("\n") == 1
    assert not daemons.pidfile.exists()  # the failed daemon cleaned up after itself
    # A runtime dir that others may write to is refused (LSB 4: insufficient privilege).
    daemons.rdir.chmod(0o777)
    res = daemons.start(check=False)
    assert res.returncode == 4 and "writable by group or others" in res.stderr
    if os.geteuid() == 0:  # one that another user owns is refused too
        daemons.rdir.chmod(0o700)
        os.chown(daemons.rdir, 65534, 65534)
        res = daemons.start(check=False)
        assert res.returncode == 4 and "owned by uid 65534" in res.stderr


def test_timeout_kills_the_half_started_daemon(daemons: Daemons) -> None:
    """14-15: no readiness within --timeout: the starter ends the daemon and says so."""
    slow = daemons.base / "slow.toml"
    slow.write_text("init_delay = 20.0\n")
    res = daemons.start("--config", slow, "--timeout", "0.5", check=False)
    assert res.returncode == 1
    assert "not ready within 0.5 s" in res.stderr and "half-started daemon" in res.stderr
    pid = int(res.stderr.rsplit("(pid ", 1)[1].split(")")[0])
    daemons.pids.add(pid)
    wait_until(lambda: gone(pid), timeout=3, what="the half-started daemon to die")


def test_user_drops_privileges(daemons: Daemons) -> None:
    """13: supplementary groups, gid and uid all become the user's; it can still clean up."""
    need("root")
    daemons.base.chmod(0o711)  # the user must be able to reach its runtime dir
    daemons.start("--user", "nobody")
    pid = daemons.pid()
    status = proc_status(pid)
    import pwd

    nobody = pwd.getpwnam("nobody")
    assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
    assert status["Gid"].split() == [str(nobody.pw_gid)] * 4
    assert status["Groups"].split() == [str(g) for g in os.getgrouplist("nobody", nobody.pw_gid)]
    assert os.stat(daemons.rdir).st_uid == nobody.pw_uid
    assert os.stat(daemons.rdir / "control.sock").st_uid == nobody.pw_uid
    assert dk("stop", *daemons.loc()).returncode == 0
    wait_until(lambda: gone(pid), what="daemon to exit")
    assert os.listdir(daemons.rdir) == []  # it could remove its root-made pidfile


def test_reload_reopens_a_renamed_log(daemons: Daemons) -> None:
    """SIGHUP: logrotate's rename, then HUP: new lines go to a new file at the old name."""
    log = daemons.base / "daemon.log"
    daemons.start("--log-file", log)
    pid = daemons.pid()
    rotated = log.with_suffix(".log.1")
    log.rename(rotated)
    os.kill(pid, signal.SIGHUP)
    wait_until(log.exists, what="the log to be reopened")
    wait_until(lambda: "reloaded" in log.read_text(), what="the reload line")
    assert "ready" in rotated.read_text() and "reloaded" not in rotated.read_text()
    assert os.readlink(f"/proc/{pid}/fd/2") == str(log)
    assert dk("stop", *daemons.loc()).returncode == 0
    assert "stopped" in log.read_text()


def test_reload_keeps_old_config_on_error(daemons: Daemons) -> None:
    """SIGHUP/reload: a good config is applied; a bad one is refused, logged, old one kept."""
    conf = daemons.base / "daemon.toml"
    conf.write_text('name = "first"\n')
    log = daemons.base / "daemon.log"
    daemons.start("--config", conf, "--log-file", log)
    conf.write_text('name = "second"\n')
    res = dk("reload", *daemons.loc())
    assert res.returncode == 0, res.stderr
    assert '"name": "second"' in dk("status", *daemons.loc(), "--json").stdout
    conf.write_text("name = [\n")
    res = dk("reload", *daemons.loc())
    assert res.returncode == 6 and "keeping the old configuration" in res.stderr
    os.kill(daemons.pid(), signal.SIGHUP)  # same through the signal: logged, not fatal
    wait_until(lambda: log.read_text().count("reload failed") == 2, what="the logged error")
    assert '"name": "second"' in dk("status", *daemons.loc(), "--json").stdout
    assert dk("stop", *daemons.loc()).returncode == 0


def test_sigterm_exits_0_in_foreground() -> None:
    """`run` under SIGTERM: a graceful stop, exit status 0 (what systemd records)."""
    import tempfile

    rdir = Path(tempfile.mkdtemp(dir="/tmp")) / "run"
    proc = subprocess.Popen([*CLI, "run", "--runtime-dir", str(rdir)], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (rdir / "control.sock").exists(), what="the control socket")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 1.0
        assert os.listdir(rdir) == []
    finally:
        proc.kill()
        proc.wait()
        rdir.rmdir() if rdir.exists() else None
        rdir.parent.rmdir()
