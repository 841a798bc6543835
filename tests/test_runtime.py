"""Runtime directory checks, object names and liveness, against the real file system and /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from daemonkit.errors import RuntimeDirError
from daemonkit.runtime import (
    ensure_private_dir,
    object_name,
    owner_of_name,
    owner_of_sysv_key,
    pid_alive,
    proc_stat,
    sysv_key,
)


def test_private_dir_is_created_0700(tmp_path: Path) -> None:
    d = ensure_private_dir(tmp_path / "a" / "run")
    assert os.stat(d).st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_group_or_world_writable_dir_is_refused(tmp_path: Path, mode: int) -> None:
    d = tmp_path / "run"
    d.mkdir()
    d.chmod(mode)
    with pytest.raises(RuntimeDirError, match="writable by group or others"):
        ensure_private_dir(d)


def test_symlinked_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(RuntimeDirError, match="symlink"):
        ensure_private_dir(tmp_path / "link")


def test_names_and_keys_carry_the_owner() -> None:
    name = object_name("posix-shm", posix=True)
    assert name.startswith(f"/dk.{os.getpid()}.posix-shm.")
    assert owner_of_name(name) == os.getpid()
    assert owner_of_name("/someone-else") is None
    for i in range(4):
        assert owner_of_sysv_key(sysv_key(i)) == os.getpid() % (1 << 22)
    assert owner_of_sysv_key(0x12345678) is None


def test_a_zombie_is_not_alive() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        state = proc_stat(pid)[0]
        assert state == "Z"  # exited, not yet reaped: the kernel still lists it
        assert not pid_alive(pid)
    finally:
        os.waitpid(pid, 0)
    assert pid_alive(os.getpid())
    assert not pid_alive(pid)
