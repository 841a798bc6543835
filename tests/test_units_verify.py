"""The files in services/: every unit passes ``systemd-analyze verify`` with nothing on stderr.

systemd-analyze exits 0 even on unknown keys and bad values and only *prints* the problem, so
the check is an empty stderr. The units name the documented install location
``/usr/local/bin/daemonkit``; verify also checks that ExecStart= is executable, so the copy
verified here points at this checkout's script instead, exactly what an install by hand does.
The init-style script and the logrotate snippet are checked by their own tools where present.
The same files as ``daemonkit unit`` prints them, with this venv's script and another runtime
dir filled in, go through the same checks.
"""

from __future__ import annotations

import os
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


@pytest.mark.needs("systemd-analyze")
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


ROOT = Path(__file__).resolve().parents[1]
SHELL_SCRIPTS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in [*ROOT.glob("scripts/*"), *ROOT.glob(".ci/*")]
    if p.is_file() and p.read_bytes().startswith((b"#!/bin/sh", b"#!/usr/bin/env bash"))
)


@pytest.mark.needs("shellcheck")
def test_init_script_passes_shellcheck() -> None:
    script = SERVICES / "daemonkit-init"
    done = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.needs("shellcheck")
@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_scripts_pass_shellcheck(script: str) -> None:
    """The README's two commands, their helpers and CI's entry point: bash, linted."""
    done = subprocess.run(["shellcheck", str(ROOT / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.needs("logrotate")
def test_logrotate_snippet_parses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run(
        ["logrotate", "--debug", "--state", str(state), str(SERVICES / "daemonkit.logrotate")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0 and "error" not in done.stderr.lower(), done.stderr


# -- the files as `daemonkit unit` prints them: the installed script and the runtime dir filled in


def _printed(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.prefix) / "bin" / "daemonkit"
    return subprocess.run(
        [str(script), "unit", *args], capture_output=True, text=True, timeout=60
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["notify", "forking", "init", "logrotate"])
def test_unit_shipped_is_the_file_in_services(kind: str) -> None:
    done = _printed(kind, "--shipped")
    assert done.returncode == 0, done.stderr
    names = {
        "notify": "daemonkit-demo.service",
        "forking": "daemonkit-demo-forking.service",
        "init": "daemonkit-init",
        "logrotate": "daemonkit.logrotate",
    }
    assert done.stdout == (SERVICES / names[kind]).read_text()


@pytest.mark.needs("systemd-analyze")
@pytest.mark.parametrize(
    ("kind", "runtime_dir", "unit_name"),
    [
        ("notify", None, "daemonkit-demo.service"),
        ("forking", None, "daemonkit-demo-forking.service"),
        ("notify", "/run/dk-elsewhere", "daemonkit-demo.service"),
        ("forking", "/run/dk/forking", "daemonkit-demo-forking.service"),
    ],
)
def test_printed_unit_passes_systemd_analyze_verify(
    kind: str, runtime_dir: str | None, unit_name: str, tmp_path: Path
) -> None:
    done = _printed(kind, *(["--runtime-dir", runtime_dir] if runtime_dir else []))
    assert done.returncode == 0, done.stderr
    rdir = runtime_dir or ("/run/daemonkit-forking" if kind == "forking" else "/run/daemonkit")
    script = Path(sys.prefix) / "bin" / "daemonkit"
    keys = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if "=" in line and line[0] != "#"
    )
    verb = "run" if kind == "notify" else "start"
    assert keys["ExecStart"].startswith(f"{script} {verb} --runtime-dir {rdir}")
    assert keys["RuntimeDirectory"] == rdir.removeprefix("/run/")
    if kind == "forking":
        assert keys["PIDFile"] == f"{rdir}/daemonkit.pid"
    assert not [line for line in done.stdout.splitlines() if INSTALLED in line and line[0] != "#"]
    unit = tmp_path / unit_name
    unit.write_text(done.stdout)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (verify.returncode, verify.stderr) == (0, ""), verify.stderr


def test_printed_init_script_is_valid_sh_and_names_the_script(tmp_path: Path) -> None:
    done = _printed("init", "--runtime-dir", "/srv/dk")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#!/bin/sh\n")
    script = Path(sys.prefix) / "bin" / "daemonkit"
    assert f'DAEMONKIT="${{DAEMONKIT:-{script}}}"' in done.stdout.splitlines()
    assert 'RUNTIME_DIR="${RUNTIME_DIR:-/srv/dk}"' in done.stdout.splitlines()
    path = tmp_path / "daemonkit-init"
    path.write_text(done.stdout)
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0
    status = subprocess.run(
        ["sh", str(path), "status"], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "RUNTIME_DIR": str(tmp_path / "run")},
    )  # fmt: skip
    assert status.returncode == 3, status.stdout + status.stderr  # LSB: not running


@pytest.mark.needs("logrotate")
def test_printed_logrotate_snippet_parses(tmp_path: Path) -> None:
    done = _printed("logrotate", "--runtime-dir", "/srv/dk")
    assert done.returncode == 0, done.stderr
    assert "for pidfile in /srv/dk/daemonkit.pid; do" in done.stdout
    snippet = tmp_path / "daemonkit"
    snippet.write_text(done.stdout)
    check = subprocess.run(
        ["logrotate", "--debug", "--state", str(tmp_path / "state"), str(snippet)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0 and "error" not in check.stderr.lower(), check.stderr


@pytest.mark.parametrize(
    "args",
    [["notify", "--runtime-dir", "/tmp/dk"], ["forking", "--runtime-dir", "/run"],
     ["notify", "--runtime-dir", "/run/a b"], ["init", "--runtime-dir", "relative"],
     ["bogus"], ["init", "--shipped", "--runtime-dir", "/run/x"]],
)  # fmt: skip
def test_unit_bad_arguments_are_one_line_usage_errors(args: list[str]) -> None:
    done = _printed(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_wheel_ships_the_service_files(tmp_path: Path) -> None:
    """A wheel built from this tree holds the units, the init script (executable), the logrotate
    snippet and the license: what `daemonkit unit` reads after a plain `pip install`."""
    import zipfile

    src = tmp_path / "src"  # build from a copy: setuptools writes build/ and *.egg-info/
    src.mkdir()
    root = SERVICES.parent
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, src / name)
    shutil.copytree(
        root / "daemonkit", src / "daemonkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path, src],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("daemonkit-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        infos = {i.filename: i for i in whl.infolist()}
        for shipped in sorted(SERVICES.iterdir()):
            info = infos[f"daemonkit/service/units/{shipped.name}"]
            assert whl.read(info) == shipped.read_bytes(), shipped.name
            mode = info.external_attr >> 16
            assert bool(mode & 0o100) == os.access(shipped, os.X_OK), shipped.name
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in infos)
