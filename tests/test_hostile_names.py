"""Names of kernel objects cannot be squatted: another user who creates, before us, the
objects our pid would name cannot stop a channel from being made.

The squatter runs as a second user (``nobody``, through setpriv(1)) with the system's
python3 and ctypes: it takes all four System V keys of this test's pid in every key space
(semget, shmget, msgget with ``IPC_CREAT|IPC_EXCL``) and creates the first hundred names a
counter would give in ``/dev/shm``. The channels are then made here, in this process, and
carry a message; the squatter's objects are removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import sysv_ipc
from facilities import require

from daemonkit.channels import channel_class
from daemonkit.runtime import sysv_key

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
SQUAT = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
keys = [int(k) for k in sys.argv[1].split(",")]
IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
for key in keys:
    for call in (lambda: libc.semget(key, 1, IPC_CREAT | IPC_EXCL | 0o600),
                 lambda: libc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600),
                 lambda: libc.msgget(key, IPC_CREAT | IPC_EXCL | 0o600)):
        if call() < 0:
            sys.exit(f"squat {key:#x}: errno {ctypes.get_errno()}")
for name in sys.argv[2:]:
    os.close(os.open("/dev/shm/" + name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
print("squatted")
"""


@pytest.fixture
def squatted() -> Iterator[list[str]]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        require("second-user", "acting as a second user needs root and setpriv")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        require("second-user", f"{SYSTEM_PYTHON} for the second user is missing")
    keys = [sysv_key(i) for i in range(4)]
    me = os.getpid()
    names = [f"dk.{me}.{kind}.{n}" for kind in ("posix-shm", "posix-mq") for n in range(100)]
    names += [f"sem.dk.{me}.{kind}.{n}" for kind in ("posix-shm", "posix-sem") for n in range(100)]
    try:
        out = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             SYSTEM_PYTHON, "-c", SQUAT, ",".join(map(str, keys)), *names],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert out.stdout == "squatted\n", out.stderr
        yield names
    finally:
        for key in keys:
            for cls in (sysv_ipc.Semaphore, sysv_ipc.SharedMemory, sysv_ipc.MessageQueue):
                with contextlib.suppress(sysv_ipc.ExistentialError):
                    cls(key).remove()
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink("/dev/shm/" + name)


@pytest.mark.parametrize("name", ["sysv-sem", "sysv-shm", "sysv-mq", "posix-shm", "posix-sem"])
def test_a_channel_is_made_though_another_user_squats_our_names(
    name: str, squatted: list[str]
) -> None:
    try:
        cls = channel_class(name)
    except ImportError as exc:
        pytest.skip(f"{name}: {exc}")
    with cls("thread", 64) as channel:  # setup alone is what a squatter would stop
        assert channel.name == name
