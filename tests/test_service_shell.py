"""The demo daemon's shell side as an admin uses it: restart, the runtime dir named once
(``DAEMONKIT_RUNTIME_DIR``, the settings file), ``status`` like ``systemctl status``, a log
file whose directory is missing, and a runtime dir that is a file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from daemon_support import Daemons, daemons_fixture, dk, gone, read_pid  # noqa: F401


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAEMONKIT_RUNTIME_DIR",)}
    return {**env, **extra}


def test_restart_replaces_the_daemon_and_starts_a_stopped_one(daemons: Daemons) -> None:
    daemons.start()
    first = daemons.pid()
    res = dk("restart", *daemons.loc())
    assert res.returncode == 0, res.stderr
    second = daemons.pid()
    assert second != first and gone(first) and not gone(second)
    assert res.stdout.splitlines()[0] == f"daemonkit: stopped (pid {first}, SIGTERM)"
    assert res.stdout.splitlines()[1].startswith(f"daemonkit: started (pid {second})")
    assert dk("stop", *daemons.loc()).returncode == 0
    res = dk("restart", *daemons.loc(), "--backend", "python-daemon")
    assert res.returncode == 0, res.stderr
    third = daemons.pid()
    assert "python-daemon" in dk("status", *daemons.loc()).stdout
    assert dk("stop", *daemons.loc()).returncode == 0 and gone(third)


def test_runtime_dir_named_once_in_the_environment(daemons: Daemons) -> None:
    """Every command finds the daemon through DAEMONKIT_RUNTIME_DIR alone; the daemon's
    re-execution with a clean environment (step 4) keeps the same directory."""
    env = _env(DAEMONKIT_RUNTIME_DIR=str(daemons.rdir))
    assert dk("start", env=env).returncode == 0
    pid = daemons.pid()  # the pidfile is in that directory
    status = dk("status", "--json", env=env)
    assert status.returncode == 0
    assert json.loads(status.stdout)["status"]["runtime_dir"] == str(daemons.rdir)
    assert "DAEMONKIT_RUNTIME_DIR" not in Path(f"/proc/{pid}/environ").read_text()
    assert dk("stop", env=env).returncode == 0 and gone(pid)


def test_runtime_dir_named_once_in_the_settings_file(daemons: Daemons) -> None:
    home = daemons.base / "home"
    (home / ".config" / "daemonkit").mkdir(parents=True)
    settings = home / ".config" / "daemonkit" / "settings.toml"
    settings.write_text(f'runtime_dir = "{daemons.rdir}"\n')
    env = _env(HOME=str(home))
    env.pop("XDG_CONFIG_HOME", None)
    assert dk("start", env=env).returncode == 0
    pid = daemons.pid()
    assert dk("status", env=env).returncode == 0
    # The variable wins over the file, --runtime-dir over both.
    other = daemons.base / "other"
    assert dk("status", env={**env, "DAEMONKIT_RUNTIME_DIR": str(other)}).returncode == 3
    assert dk("status", "--runtime-dir", other, env=env).returncode == 3
    settings.write_text("runtime_dir = 3\n")
    bad = dk("status", env=env)
    assert bad.returncode == 6 and bad.stderr == (
        f"daemonkit: settings {settings}: runtime_dir must be a non-empty string\n"
    )
    settings.write_text(f'runtime_dir = "{daemons.rdir}"\n')
    assert dk("stop", env=env).returncode == 0 and gone(pid)


@pytest.mark.parametrize("command", ["status", "start", "stop", "reload", "restart"])
def test_runtime_dir_that_is_a_file_is_a_usage_error(tmp_path: Path, command: str) -> None:
    path = tmp_path / "file"
    path.write_text("")
    res = dk(command, "--runtime-dir", path)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == f"daemonkit: --runtime-dir: {path} is not a directory\n"
    res = dk(command, env=_env(DAEMONKIT_RUNTIME_DIR=str(path)))
    assert res.returncode == 2 and "DAEMONKIT_RUNTIME_DIR" in res.stderr


def test_log_file_in_a_missing_directory(daemons: Daemons) -> None:
    """The directory is made like the runtime dir (0700), before the fork."""
    log = daemons.base / "logs" / "deep" / "daemon.log"
    daemons.start("--log-file", log)
    mode = stat.S_IMODE(os.stat(log.parent).st_mode)
    assert mode == 0o700 and "ready" in log.read_text()
    assert dk("stop", *daemons.loc()).returncode == 0


def test_log_file_under_a_file_is_refused_before_forking(daemons: Daemons) -> None:
    blocker = daemons.base / "blocker"
    blocker.write_text("")
    res = dk("start", *daemons.loc(), "--log-file", blocker / "daemon.log")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr == (
        f"daemonkit: log file {blocker}/daemon.log: {blocker} is not a directory\n"
    )
    assert not daemons.rdir.exists()  # refused before any fork: no daemon made it


def test_status_like_systemctl(daemons: Daemons) -> None:
    log = daemons.base / "daemon.log"
    daemons.start("--log-file", log)
    pid = daemons.pid()
    res = dk("status", *daemons.loc())
    assert res.returncode == 0
    out = res.stdout
    assert out.startswith(f"daemonkit: running (pid {pid}, backend native) since ")
    tasks = len(os.listdir(f"/proc/{pid}/task"))
    assert f"Main PID: {pid}\n" in out and f"Tasks: {tasks}\n" in out
    assert " resident\n" in out and f"Log: {log}\n" in out
    assert "Endpoints:" in out and "unix-stream" in out
    assert out.rstrip().splitlines()[-1] == log.read_text().splitlines()[-1]
    doc = json.loads(dk("status", *daemons.loc(), "--json", "-n", "1").stdout)
    assert doc["main_pid"] == pid and doc["tasks"] == tasks
    assert doc["memory_rss_bytes"] > 0 and doc["since"]
    assert doc["log_tail"] == log.read_text().splitlines()[-1:]
    assert dk("stop", *daemons.loc()).returncode == 0
    gone_res = dk("status", *daemons.loc(), "--json")
    assert gone_res.returncode == 3 and json.loads(gone_res.stdout)["state"] == "not running"
