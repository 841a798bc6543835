"""Bad command lines: one line on stderr, the right exit code, nothing created or started.

Each case runs ``daemonkit`` as a real process in its own session, with ``XDG_RUNTIME_DIR``
and the working directory inside an empty scratch dir. Afterwards the scratch dir must be
as empty as before, no process of the session may be alive, and no kernel object may carry
the process's pid. Root passes every permission check, so "no permission" is shown two
ways: paths the kernel refuses even to root (/proc, /sys, a file used as a directory), and
the CLI run in-process in a child that dropped to ``nobody``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from facilities import require
from procfs import in_session

from daemonkit.cleanup import list_objects

CLI = [sys.executable, "-m", "daemonkit"]
NOBODY = 65534


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="dkcli.", dir="/tmp"))
    yield base
    subprocess.run(["rm", "-rf", str(base)], check=True)


def _run(scratch: Path, args: list[str]) -> tuple[int, str, str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(scratch / "xdg")}
    proc = subprocess.Popen(
        [*CLI, *args], cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert os.listdir(scratch) == [], f"{args}: created {os.listdir(scratch)}"
    assert in_session(proc.pid, live_only=True) == [], f"{args}: left processes running"
    assert [o for o in list_objects() if o.owner == proc.pid] == []
    return proc.returncode, out, err


def _one_line(err: str) -> None:
    assert "Traceback" not in err
    assert err.startswith("daemonkit: ") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "--channels", "no-such-channel"],
        ["bench", "--channels", "pipe,,tcp"],
        ["bench", "--sizes", "12Q"],
        ["bench", "--sizes", "-64"],
        ["bench", "--iterations", "-3"],
        ["bench", "--warmup", "-1"],
        ["bench", "--duration", "-2"],
        ["bench", "--duration", "nan"],
        ["lessons", "no-such-lesson"],
        ["start", "--umask", "-1"],
        ["start", "--keep-env"],
        ["cleanup", "--runtime-dir"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(scratch: Path, args: list[str]) -> None:
    code, out, err = _run(scratch, args)
    assert code == 2 and out == "", (code, err)
    _one_line(err)


def test_unwritable_outputs_fail_before_anything_runs(scratch: Path) -> None:
    """Root may write anywhere the kernel allows: /proc refuses file creation even to root."""
    outside = Path(tempfile.mkdtemp(prefix="dkcli-dir.", dir="/tmp"))  # exists, is a directory
    try:
        bench = ["bench", "--channels", "pipe", "--peer", "thread", "--quick"]
        for args in (
            [*bench, "--json", "/proc/dkr.json"],
            [*bench, "--csv", "/nonexistent-dkr/x.csv"],
            [*bench, "--json", str(outside)],
            ["lessons", "address-space", "--quick", "--json", "/proc/dkr.json"],
        ):
            code, out, err = _run(scratch, args)
            assert code == 1 and out == "", (args, code, err)  # no table: nothing was measured
            _one_line(err)
            assert "cannot write" in err
        assert os.listdir(outside) == []
    finally:
        outside.rmdir()


@pytest.mark.parametrize("rdir", ["/proc/dkr-run", "/etc/passwd/run", "/sys/dkr-run"])
def test_start_with_an_impossible_runtime_dir_is_lsb_4(scratch: Path, rdir: str) -> None:
    code, _, err = _run(scratch, ["start", "--runtime-dir", rdir])
    assert code == 4, (code, err)  # LSB: insufficient privilege
    _one_line(err)
    assert not Path(rdir).exists()


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in a forked child that dropped every id to nobody: (exit code, stderr)."""
    from daemonkit.cli import main

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.dup2(w, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 -- not pytest's capture
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            traceback.print_exc()  # the test fails on it: stderr must be one line
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


def test_runtime_dir_without_permission(scratch: Path) -> None:
    """A runtime dir root made 0700, used by nobody: refused in one line, nothing touched."""
    if os.geteuid() != 0:
        require("root", "becoming nobody needs root")
    private = scratch / "root-only"
    private.mkdir(mode=0o700)
    rdir = private / "run"
    rdir.mkdir(mode=0o700)
    scratch.chmod(0o755)
    for argv, codes in (
        (["cleanup", "--runtime-dir", str(rdir)], (4,)),
        (["status", "--runtime-dir", str(rdir)], (1, 4)),
        (["stop", "--runtime-dir", str(rdir)], (1, 4)),
        (["cleanup", "--runtime-dir", str(scratch / "new" / "run")], (0,)),  # nothing there
    ):
        code, err = _as_nobody(argv)
        assert code in codes, (argv, code, err)
        if code:
            _one_line(err)
    assert os.listdir(rdir) == [] and sorted(os.listdir(scratch)) == ["root-only"]
