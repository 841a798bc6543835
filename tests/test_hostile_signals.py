"""SIGTERM and SIGHUP end ``bench`` and ``lessons`` like Ctrl-C: everything removed, 128+signal.

``timeout`` sends SIGTERM (or ``-s HUP``) to the command after its delay, and then to its
whole process group, peers included. The default action of both signals is death without
cleanup; daemonkit turns them into the same unwinding as Ctrl-C (:mod:`daemonkit.interrupts`).
After each run: the exit status is 128 + the signal (``--preserve-status``), the last line
names it, no process of the run is left, and no kernel object or runtime file appeared whose
owner is dead, i.e. nothing ``daemonkit cleanup`` would find. Objects of processes still alive
belong to other runs on this machine and are not ours to judge.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from facilities import need
from test_reliability_bench import process_channels

from daemonkit.channels import channel_names
from daemonkit.cleanup import KernelObject, list_objects
from daemonkit.runtime import pid_alive, resolve_runtime_dir

CLI = [sys.executable, "-m", "daemonkit"]
DELAY = "1.5"  # s: past start-up (about 0.5 s), inside the first case


def _leftovers(before: set[KernelObject]) -> list[KernelObject]:
    """New objects whose owner is dead: what `daemonkit cleanup` would remove."""
    return [
        o
        for o in list_objects([resolve_runtime_dir()])
        if o not in before and o.owner is not None and not pid_alive(o.owner)
    ]


def _timeout(sig: signal.Signals, args: list[str]) -> subprocess.CompletedProcess[str]:
    need("timeout")
    before = set(list_objects([resolve_runtime_dir()]))
    res = subprocess.run(
        ["timeout", "--preserve-status", "-s", sig.name.removeprefix("SIG"), DELAY, *CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # timeout signals its whole group: keep pytest out of it
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 128 + sig, (res.returncode, res.stderr)
    assert res.stderr.strip().splitlines()[-1] == f"daemonkit: interrupted ({sig.name})"
    assert _leftovers(before) == [], "left for daemonkit cleanup"
    return res


def _bench(channels: str) -> list[str]:
    return ["bench", "--channels", channels, "--peer", "both", "--sizes", "64",
            "--duration", "5", "--warmup", "10"]  # fmt: skip


@pytest.mark.parametrize("channel", ["posix-shm", "sysv-sem", "posix-mq", "fifo"])
def test_timeout_sigterm_mid_bench_leaves_nothing(channel: str) -> None:
    if channel not in channel_names():
        pytest.skip(f"{channel} is not available here")
    _timeout(signal.SIGTERM, _bench(channel))


def test_sighup_mid_bench_leaves_nothing() -> None:
    _timeout(signal.SIGHUP, _bench("sysv-shm"))


def test_sigterm_mid_lessons_leaves_nothing() -> None:
    _timeout(signal.SIGTERM, ["lessons", "--quick", "communication"])


@pytest.mark.stress
@pytest.mark.parametrize("channel", process_channels())
def test_timeout_sigterm_every_channel(channel: str) -> None:
    _timeout(signal.SIGTERM, _bench(channel))
