"""services/daemonkit-init, the LSB init-style script, driven from a shell as an admin would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from daemon_support import Daemons, daemons_fixture, gone  # noqa: F401 -- a fixture

SCRIPT = Path(__file__).resolve().parent.parent / "services" / "daemonkit-init"


def test_init_script_actions(daemons: Daemons) -> None:
    env = {
        **os.environ,
        "DAEMONKIT": str(Path(sys.prefix) / "bin" / "daemonkit"),
        "RUNTIME_DIR": str(daemons.rdir),
        "LOG_FILE": str(daemons.base / "log" / "daemonkit.log"),
    }

    def action(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, name], env=env, capture_output=True, text=True, timeout=30)

    assert action("status").returncode == 3
    assert action("start").returncode == 0
    first = daemons.pid()
    again = action("start")  # LSB: starting a running service is a success
    assert again.returncode == 0 and "already running" in again.stdout
    assert action("status").returncode == 0
    assert action("reload").returncode == 0
    assert action("restart").returncode == 0
    second = daemons.pid()
    assert second != first and gone(first)
    assert action("stop").returncode == 0
    assert action("stop").returncode == 0  # stopping a stopped service too
    assert action("reload").returncode == 7
    assert action("bogus").returncode == 2
    assert "reloaded configuration" in (daemons.base / "log" / "daemonkit.log").read_text()
