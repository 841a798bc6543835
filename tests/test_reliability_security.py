"""Secure by default, checked from the kernel's side: modes, owners, ids, and no shell.

* The runtime dir is made 0700; an existing one that others may write, or that is a
  symlink, is refused (one owned by another user: see test_daemon).
* Every object is created 0600 even under ``umask 000``: the modes are explicit, not the
  umask's luck. Read back with stat(2), /proc/sysvipc perms, /dev/shm and /dev/mqueue.
* The pidfile: a symlink is refused (O_NOFOLLOW), one planted by another user is not
  trusted, and no command signals the pid written in it.
* ``--user nobody``: every uid and gid is nobody's, no supplementary group of root's and no
  capability remains, and the daemon still removes its own files at stop.
* No user input reaches a shell: the package source has no shell=True, os.system or os.popen.
"""

from __future__ import annotations

import ast
import os
import pwd
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    Daemons,
    daemons_fixture,
    dk,
    gone,
    proc_status,
    wait_until,
)
from facilities import need, require
from test_reliability_bench import process_channels

import daemonkit
from daemonkit.channels import channel_class
from daemonkit.cleanup import KernelObject, list_objects
from daemonkit.runtime import resolve_runtime_dir
from daemonkit.service.client import open_endpoint

# Channels with no name in any namespace (anonymous pipes, loopback ports, signals, eventfd;
# multiprocessing's pipes and queues, whose semaphores are unlinked as soon as they are made).
NAMELESS = {
    "pipe", "tcp", "zmq-tcp", "signal", "rt-signal", "eventfd",
    "mp-pipe", "mp-pipe-simplex", "mp-queue",
}  # fmt: skip
_SYSV_TABLES = {"sysv-sem": "sem", "sysv-shm": "shm", "sysv-mq": "msg"}


def _mode(obj: KernelObject) -> tuple[str, int]:
    """(how the kernel shows it, permission bits) for one daemonkit object."""
    if obj.kind in _SYSV_TABLES:
        table = _SYSV_TABLES[obj.kind]
        for line in Path(f"/proc/sysvipc/{table}").read_text().splitlines()[1:]:
            _key, ident, perms = line.split()[:3]
            if ident == obj.name:
                return f"/proc/sysvipc/{table}", int(perms, 8)
        raise AssertionError(f"{obj} not in /proc/sysvipc/{table}")
    name = obj.name.lstrip("/")
    path = {
        "posix-shm": f"/dev/shm/{name}",
        "posix-sem": f"/dev/shm/sem.{name}",
        "posix-mq": f"/dev/mqueue/{name}",
        "file": obj.name,
    }[obj.kind]
    return path, stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


# -- runtime dir ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o720, 0o702, 0o770, 0o777, 0o1777])
def test_a_runtime_dir_others_may_write_is_refused(daemons: Daemons, mode: int) -> None:
    daemons.rdir.mkdir(mode=0o700)
    daemons.rdir.chmod(mode)
    res = daemons.start(check=False)
    assert res.returncode == 4 and "writable by group or others" in res.stderr, res.stderr
    assert os.listdir(daemons.rdir) == []  # nothing made inside it


def test_a_runtime_dir_that_is_a_symlink_is_refused(daemons: Daemons) -> None:
    real = daemons.base / "elsewhere"
    real.mkdir(mode=0o700)
    daemons.rdir.symlink_to(real)
    res = daemons.start(check=False)
    assert res.returncode == 4 and "symlink" in res.stderr, res.stderr
    assert os.listdir(real) == []


def test_daemon_objects_are_0600_under_umask_000(daemons: Daemons) -> None:
    """Runtime dir 0700; control socket, endpoint sockets, FIFOs, shared memory and its
    semaphores 0600, with the daemon's umask 000 and the client's too."""
    daemons.start("--umask", "000")
    pid = daemons.pid()
    assert stat.S_IMODE(os.stat(daemons.rdir).st_mode) == 0o700
    assert proc_status(pid)["Umask"] == "0000"
    old = os.umask(0)
    ends = []
    try:
        for name in ("fifo", "posix-shm", "unix-stream", "zmq-ipc"):
            ends.append(open_endpoint(daemons.rdir, name, 64))
        objs = [o for o in list_objects([daemons.rdir]) if o.owner == pid]
        kinds = {o.kind for o in objs}
        assert {"file", "posix-sem"} <= kinds, objs  # posix-shm's buffer is a nameless memfd
        fifos = [o for o in objs if o.kind == "file" and ".fifo." in o.name]
        assert len(fifos) == 2 and all(stat.S_ISFIFO(os.lstat(o.name).st_mode) for o in fifos)
        for obj in objs:
            assert _mode(obj)[1] == 0o600, (obj, _mode(obj))
        sock = daemons.rdir / "control.sock"
        assert (
            stat.S_ISSOCK(os.lstat(sock).st_mode) and stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
        )
    finally:
        os.umask(old)
        for end in ends:
            end.close()
    assert stat.S_IMODE(os.stat(daemons.pidfile).st_mode) & 0o022 == 0  # nobody else writes it
    assert dk("stop", *daemons.loc()).returncode == 0


@pytest.mark.parametrize("name", process_channels())
def test_channel_objects_are_0600_under_umask_000(name: str, umask_000: None) -> None:
    """Every named object of every channel, as the kernel lists it, while the channel is open."""
    if name == "posix-mq":
        need("mqueue")  # the queue exists without it, but nothing lists it
    me = os.getpid()
    rdir = resolve_runtime_dir()
    with channel_class(name)("process", 64):
        objs = [o for o in list_objects([rdir]) if o.owner == me]
        assert objs or name in NAMELESS, f"{name}: no named object seen"
        for obj in objs:
            where, mode = _mode(obj)
            assert mode == 0o600, f"{name}: {where} is {mode:o}"
        if rdir.exists():
            assert stat.S_IMODE(os.stat(rdir).st_mode) == 0o700


# -- pidfile -----------------------------------------------------------------------------------


def test_a_pidfile_that_is_a_symlink_is_refused(daemons: Daemons) -> None:
    daemons.rdir.mkdir(mode=0o700)
    target = daemons.base / "target"
    target.write_text("precious\n")
    daemons.pidfile.symlink_to(target)
    res = daemons.start(check=False)
    assert res.returncode != 0 and res.stderr.endswith("is a symlink\n"), res.stderr
    assert res.stderr.count("\n") == 1
    assert target.read_text() == "precious\n"  # not truncated, not locked, not followed
    other = daemons.base / "pid-link"  # the same through --pidfile
    other.symlink_to(target)
    res = daemons.start("--pidfile", other, check=False)
    assert res.returncode != 0 and "is a symlink" in res.stderr
    assert target.read_text() == "precious\n"
    assert not (daemons.rdir / "control.sock").exists()


def test_a_pidfile_planted_by_another_user_is_not_trusted(daemons: Daemons) -> None:
    """It names a live process of ours: status does not call it running, stop does not
    signal it, and start refuses to lock and write a file someone else can rewrite."""
    if os.geteuid() != 0:
        require("root", "planting a file as another user needs root")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        daemons.rdir.mkdir(mode=0o700)
        daemons.pidfile.write_text(f"{sleeper.pid}\n")
        os.chown(daemons.pidfile, 65534, 65534)
        res = dk("status", *daemons.loc())
        assert res.returncode == 1 and "dead" in res.stdout  # the kernel's lock says: nobody
        res = dk("stop", *daemons.loc())
        assert res.returncode == 0 and "not running" in res.stdout
        time.sleep(0.1)
        assert sleeper.poll() is None  # never signalled
        res = daemons.start(check=False)
        assert res.returncode != 0 and "refusing to trust it" in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1
        assert os.listdir(daemons.rdir) == ["daemonkit.pid"]  # nothing else was started
        assert daemons.pidfile.read_text() == f"{sleeper.pid}\n"
    finally:
        sleeper.kill()
        sleeper.wait()


# -- dropping privileges -----------------------------------------------------------------------


def test_user_nobody_keeps_no_id_group_or_capability_of_root(daemons: Daemons) -> None:
    need("root")
    nobody = pwd.getpwnam("nobody")
    daemons.base.chmod(0o711)  # nobody must reach its runtime dir
    daemons.start("--user", "nobody")
    pid = daemons.pid()
    st = proc_status(pid)
    assert st["Uid"].split() == [str(nobody.pw_uid)] * 4  # real, effective, saved, filesystem
    assert st["Gid"].split() == [str(nobody.pw_gid)] * 4
    assert set(st["Groups"].split()) <= {str(nobody.pw_gid)}  # none of root's groups
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    # What it makes for a client belongs to nobody and is 0600.
    with open_endpoint(daemons.rdir, "posix-shm", 64):
        shm = [o for o in list_objects() if o.owner == pid and o.kind == "posix-sem"]
        assert shm
        for obj in shm:
            info = os.stat(f"/dev/shm/sem.{obj.name.lstrip('/')}")
            assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (nobody.pw_uid, 0o600)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: gone(pid), what="the daemon to stop")
    assert os.listdir(daemons.rdir) == []  # pidfile and sockets removed by nobody itself


# -- no shell ----------------------------------------------------------------------------------


def _shell_calls(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        if func in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            found.append((node.lineno, func))
        for kw in node.keywords:
            if kw.arg == "shell" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                found.append((node.lineno, f"{func}(shell=...)"))
    return found


def test_no_user_input_reaches_a_shell() -> None:
    root = Path(daemonkit.__file__).parent
    sources = sorted(root.rglob("*.py"))
    assert len(sources) > 20
    bad = {}
    for path in sources:
        text = path.read_text()
        calls = _shell_calls(ast.parse(text, str(path)))
        if calls or ("os.exec" in text and "/bin/sh" in text):
            bad[str(path.relative_to(root))] = calls
    assert bad == {}
    # The checker itself catches each form it looks for.
    probe = "import os, subprocess\nos.system(x)\nos.popen(x)\nsubprocess.run(x, shell=True)\n"
    assert [f for _, f in _shell_calls(ast.parse(probe))] == [
        "os.system", "os.popen", "subprocess.run(shell=...)",
    ]  # fmt: skip
