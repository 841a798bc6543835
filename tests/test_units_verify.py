"""The files in services/: every unit passes ``systemd-analyze verify`` with nothing on stderr.

systemd-analyze exits 0 even on unknown keys and bad values and only *prints* the problem, so
the check is an empty stderr. The units name the documented install location
``/usr/local/bin/daemonkit``; verify also checks that ExecStart= is executable, so the copy
verified here points at this checkout's script instead, exactly what an install by hand does.
The init-style script and the logrotate snippet are checked by their own tools where present.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parent.parent / "services"
UNITS = sorted(SERVICES.glob("*.service"))
INSTALLED = "/usr/local/bin/daemonkit"


def test_units_exist() -> None:
    assert {u.name for u in UNITS} >= {"daemonkit-demo.service", "daemonkit-demo-forking.service"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    script = Path(sys.prefix) / "bin" / "daemonkit"
    assert script.exists(), "the venv's console script is missing"
    text = unit.read_text()
    assert INSTALLED in text
    copy = tmp_path / unit.name  # verify wants the unit's own name
    copy.write_text(text.replace(INSTALLED, str(script)))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_init_script_is_valid_sh() -> None:
    script = SERVICES / "daemonkit-init"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    if shutil.which("shellcheck"):
        done = subprocess.run(
            ["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="no logrotate")
def test_logrotate_snippet_parses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run(
        ["logrotate", "--debug", "--state", str(state), str(SERVICES / "daemonkit.logrotate")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr
