"""`daemonkit bench` arguments, `daemonkit channels` and `daemonkit cleanup`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import posix_ipc
import pytest
import sysv_ipc

from daemonkit.channels import channel_names
from daemonkit.cli import main
from daemonkit.runtime import sysv_key


@pytest.mark.parametrize(
    "args",
    [
        ["--channels", "no-such-channel"],
        ["--channels", "pipe,nope"],
        ["--sizes", "abc"],
        ["--sizes", "12Q"],
        ["--sizes", "-5"],
        ["--sizes", "64,"],
        ["--sizes", "65M"],
        ["--iterations", "-3"],
        ["--iterations", "0"],
        ["--iterations", "ten"],
        ["--warmup", "-1"],
        ["--duration", "0"],
        ["--iterations", "5", "--duration", "1"],
        ["--peer", "fork"],
        ["--cpu", "all"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("daemonkit: ") and err.count("\n") == 1, err


def test_bad_size_from_the_real_command_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daemonkit", "bench", "--sizes", "12Q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "12Q" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_channels_lists_every_registry_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["channels"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == channel_names()
    for line in lines:
        if "not available" not in line:  # modules written alongside: listed either way
            _name, kind, *rest = line.split()
            if kind == "no":  # "no payload": a notification channel
                kind, *rest = rest
            assert kind == "payload"
            assert rest[0] in ("process+thread", "process", "thread")


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # reaped: the pid names no process now
    return pid


def test_cleanup_lists_then_removes_only_dead_owners_leftovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = _dead_pid()
    rdir = tmp_path / "run"
    rdir.mkdir(mode=0o700)
    shm_name = f"/dk.{dead}.shm.0"
    shm = posix_ipc.SharedMemory(shm_name, posix_ipc.O_CREX, mode=0o600, size=4096)
    shm.close_fd()
    sem = sysv_ipc.Semaphore(sysv_key(0, pid=dead), sysv_ipc.IPC_CREX, 0o600)
    fifo = rdir / f"dk.{dead}.fifo.0"
    os.mkfifo(fifo, 0o600)
    alive = rdir / f"dk.{os.getpid()}.sock.0"  # owner (this test) still running
    alive.touch(0o600)

    def sem_exists() -> bool:
        return str(sem.id) in Path("/proc/sysvipc/sem").read_text().split()

    try:
        assert main(["cleanup", "--dry-run", "--runtime-dir", str(rdir)]) == 0
        out = capsys.readouterr().out
        for shown in (shm_name, str(sem.id), str(fifo)):
            assert "would remove" in out and shown in out
        assert str(alive) not in out
        assert Path("/dev/shm" + shm_name).exists() and sem_exists() and fifo.exists()

        assert main(["cleanup", "--runtime-dir", str(rdir)]) == 0
        out = capsys.readouterr().out
        assert f"removed posix-shm {shm_name}" in out
        assert not Path("/dev/shm" + shm_name).exists()
        assert not sem_exists()
        assert not fifo.exists()
        assert alive.exists()  # a live owner's file is left alone
    finally:
        if Path("/dev/shm" + shm_name).exists():
            posix_ipc.unlink_shared_memory(shm_name)
        if sem_exists():
            sem.remove()
