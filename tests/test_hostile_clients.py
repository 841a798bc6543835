"""Clients verify whom they talk to: a fake daemon that lies cannot use a daemonkit command.

The liar is ``fake_daemon.py``: it locks a pidfile and listens on ``control.sock`` like the
real daemon, then answers with a path to the victim's own private file where a FIFO belongs,
a symlink to it named like a daemon FIFO, another process as the signal target, malformed or
endless replies. Run as a second local user (``nobody`` through setpriv(1)) in a directory of
its own, and as the victim itself in a trusted directory (then only the replies lie). After
every command: the victim's file is byte for byte and mtime the same, a bystander process got
no signal, the liar got no signal, nothing printed "running", and each refusal was one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_support import Daemons, daemons_fixture, dk, gone  # noqa: F401
from facilities import require

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # the liar must run as nobody, who cannot read our venv
FAKE = Path(__file__).with_name("fake_daemon.py")
CHANNELS = "fifo,signal,unix-stream,zmq-ipc,posix-shm"


@dataclass
class Scene:
    """The victim's file and a bystander process, and what they were before."""

    secret: Path
    content: bytes
    mtime: int
    bystander: subprocess.Popen[bytes]

    def untouched(self) -> None:
        st = self.secret.stat()
        assert self.secret.read_bytes() == self.content and st.st_mtime_ns == self.mtime
        assert self.bystander.poll() is None, "the bystander was signalled"


@pytest.fixture
def scene(daemons: Daemons) -> Iterator[Scene]:
    secret = daemons.base / "secret"
    secret.write_bytes(b"the victim's private bytes\n")
    secret.chmod(0o600)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield Scene(secret, secret.read_bytes(), secret.stat().st_mtime_ns, bystander)
    finally:
        bystander.kill()
        bystander.wait()


def lies_for(scene: Scene, rdir: Path, status: object = None) -> dict[str, object]:
    """Replies naming the victim's file, a symlink to it, a FIFO-named regular file, and the
    bystander (and its process group) as the signal target."""
    return {
        "plant": {
            "dk.$PID.fifo.1": f"symlink:{scene.secret}",
            "dk.$PID.fifo.2": "file",
            "dk.$PID.unix-stream.1": "fifo",
        },
        "status": status
        if status is not None
        else {
            "pid": "$PID",
            "name": "daemonkit",
            "version": "6.6.6",
            "backend": "native",
            "uptime_s": 1.0,
            "reloads": 0,
            "runtime_dir": str(rdir),
            "config": None,
            "log_file": None,
            "endpoints": {c: {"echoes": 0} for c in CHANNELS.split(",")},
        },
        "reload": {"ok": True, "reloads": 1},
        "open:fifo": {"to_client": f"{rdir}/dk.$PID.fifo.1", "to_daemon": f"{rdir}/dk.$PID.fifo.2"},
        "open:signal": {"pid": scene.bystander.pid, "signal": 15},
        "open:unix-stream": {"path": f"{rdir}/dk.$PID.unix-stream.1"},
        "open:zmq-ipc": {"address": f"ipc://{scene.secret}"},
        "open:posix-shm": {"name": "/dk.1.posix-shm.0", "size": 64},
    }


@dataclass
class Liar:
    proc: subprocess.Popen[str]
    rdir: Path
    signal_log: Path

    def untouched(self) -> None:
        assert self.proc.poll() is None, "the liar was killed"
        assert not self.signal_log.exists() or self.signal_log.read_text() == "", (
            f"the liar was signalled: {self.signal_log.read_text()!r}"
        )


def start_liar(rdir: Path, lies: dict[str, object], workdir: Path, user: int | None) -> Liar:
    lies_path = workdir / "lies.json"
    lies_path.write_text(json.dumps(lies).replace('"$PID"', "$PID"))
    signal_log = workdir / "signals.log"
    prefix: list[str] = []
    python = sys.executable
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        python = SYSTEM_PYTHON
        lies_path.chmod(0o644)
        workdir.chmod(0o777)  # the liar writes its signal log here
    proc = subprocess.Popen(
        [*prefix, python, str(FAKE), str(rdir), str(lies_path), str(signal_log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return Liar(proc, rdir, signal_log)


def stop_liar(liar: Liar) -> None:
    liar.proc.kill()
    liar.proc.wait()
    assert liar.proc.stdout is not None
    liar.proc.stdout.close()


def commands(rdir: Path) -> list[list[str]]:
    loc = ["--runtime-dir", str(rdir)]
    return [
        ["status", *loc],
        ["status", "--json", *loc],
        ["reload", *loc],
        ["stop", "--timeout", "0.5", *loc],
        ["restart", "--timeout", "0.5", *loc],
        [
            "bench",
            "--target",
            "daemon",
            *loc,
            "--channels",
            CHANNELS,
            "--sizes",
            "64",
            "--iterations",
            "3",
            "--warmup",
            "1",
        ],
    ]


def one_line_refusal(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daemonkit: "), res.stderr
    assert "running" not in res.stdout


@pytest.fixture
def attacker_dir() -> Iterator[Path]:
    """A runtime dir path in /tmp that the second user will create, as a squatter would."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        require("second-user", "acting as a second user needs root and setpriv")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        require("second-user", f"{SYSTEM_PYTHON} for the second user is missing")
    work = Path(tempfile.mkdtemp(prefix="dkh.", dir="/tmp"))
    work.chmod(0o755)
    try:
        yield work / "run"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_second_users_fake_daemon_is_refused_by_every_command(
    scene: Scene, attacker_dir: Path
) -> None:
    liar = start_liar(attacker_dir, lies_for(scene, attacker_dir), attacker_dir.parent, NOBODY)
    try:
        assert os.stat(attacker_dir).st_uid == NOBODY
        for argv in commands(attacker_dir):
            res = dk(*argv)
            one_line_refusal(res)
            assert "does not trust" in res.stderr, res.stderr
            scene.untouched()
            liar.untouched()
    finally:
        stop_liar(liar)


def test_a_trusted_dir_under_a_second_users_directory_is_refused(
    scene: Scene, attacker_dir: Path
) -> None:
    """Root's own private dir, but inside one the second user owns (who could swap it)."""
    parent = attacker_dir.parent
    os.chown(parent, NOBODY, NOBODY)
    rdir = parent / "rootrun"
    liar = start_liar(rdir, lies_for(scene, rdir), Path(tempfile.mkdtemp(dir="/tmp")), None)
    try:
        for argv in commands(rdir):
            res = dk(*argv)
            one_line_refusal(res)
            assert f"ancestor {parent} is owned by uid {NOBODY}" in res.stderr, res.stderr
            scene.untouched()
            liar.untouched()
    finally:
        stop_liar(liar)
        shutil.rmtree(liar.signal_log.parent)


def test_lying_replies_in_a_trusted_dir_touch_nothing(scene: Scene, daemons: Daemons) -> None:
    """The directory and the listener pass; every ``open`` reply lies: every case fails with
    its reason, the victim's file is never opened for writing, the bystander never signalled."""
    liar = start_liar(daemons.rdir, lies_for(scene, daemons.rdir), daemons.base, None)
    try:
        out = daemons.base / "out.json"
        res = dk(*commands(daemons.rdir)[-1], "--json", out)
        assert "Traceback" not in res.stderr, res.stderr
        doc = json.loads(out.read_text())
        errors = {r["channel"]: r["error"] for r in doc["results"]}
        assert set(errors) == set(CHANNELS.split(",")), errors
        assert "not a FIFO" in errors["fifo"], errors  # the symlink, never followed
        assert "is not the daemon" in errors["signal"], errors
        assert "not a socket" in errors["unix-stream"], errors
        assert "not in the runtime dir" in errors["zmq-ipc"], errors
        assert "no descriptor came with it" in errors["posix-shm"], errors  # no memfd passed
        scene.untouched()
        liar.untouched()
    finally:
        stop_liar(liar)


MALFORMED: dict[str, object] = {
    "not json": "version 6.6.6 running\n",
    "not an object": "[1, 2]\n",
    "pid of another process": {
        "pid": 1,
        "version": "6.6.6",
        "backend": "x",
        "uptime_s": 1,
        "endpoints": {},
    },
    "pid as a string": {
        "pid": "$PID",
        "version": "6.6.6",
        "backend": "x",
        "uptime_s": 1,
        "endpoints": {},
    },
    "endless line": "x" * (2 * 1024 * 1024),
    "counters of the wrong type": {
        "pid": "$PID",
        "version": "6.6.6",
        "backend": "x",
        "uptime_s": 1,
        "endpoints": {"fifo": {"echoes": [1]}},
    },
}


@pytest.mark.parametrize("lie", sorted(MALFORMED))
def test_a_malformed_status_reply_is_one_line_and_exit_1(
    lie: str, scene: Scene, daemons: Daemons
) -> None:
    status = MALFORMED[lie]
    if lie == "pid as a string":
        status = {**status, "pid": "$PID-as-text"}  # type: ignore[dict-item]
    liar = start_liar(daemons.rdir, lies_for(scene, daemons.rdir, status), daemons.base, None)
    try:
        for argv in (["status", "--runtime-dir", str(daemons.rdir)], commands(daemons.rdir)[-1]):
            one_line_refusal(dk(*argv))
        liar.untouched()
    finally:
        stop_liar(liar)


def test_status_never_reads_the_log_a_reply_names(scene: Scene, daemons: Daemons) -> None:
    """A status reply naming the victim's private file as its log: the tail is read from the
    daemon's own stderr (here a pipe: no tail), never from the path the reply names."""
    lies = lies_for(scene, daemons.rdir)
    status = lies["status"]
    assert isinstance(status, dict)
    lies["status"] = {**status, "log_file": str(scene.secret)}
    liar = start_liar(daemons.rdir, lies, daemons.base, None)
    try:
        res = dk("status", "--runtime-dir", str(daemons.rdir))
        assert res.returncode == 0, res.stderr  # our own user's directory: it is believed
        assert scene.content.decode().strip() not in res.stdout
    finally:
        stop_liar(liar)
