"""`daemonkit bench --report DIR` and `daemonkit lessons --report DIR`: measure, then draw."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")


def _daemonkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemonkit", *args], capture_output=True, text=True, timeout=240
    )


def _images(page: Path) -> list[str]:
    return re.findall(r"<img[^>]+src=['\"]data:image/png;base64,", page.read_text())


def test_bench_report_draws_what_was_measured(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = _daemonkit(
        "bench", "--channels", "pipe,eventfd", "--iterations", "300", "--warmup", "30",
        "--sizes", "0,4K", "--json", str(tmp_path / "b.json"), "--report", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = out / "report.html"
    assert f"report: {page}" in r.stdout
    assert len(_images(page)) >= 2  # at least the summary and the percentile plots
    assert "pipe" in page.read_text()


def test_lessons_report_draws_the_verdict(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = _daemonkit("lessons", "semaphore-vs-signal", "--quick", "--report", str(out))
    assert r.returncode == 0, r.stderr
    page = out / "report.html"
    assert page.exists()
    assert "semaphore" in page.read_text().lower()


@pytest.mark.parametrize("cmd", [["bench", "--channels", "pipe"], ["lessons", "daemon"]])
def test_unusable_report_dir_fails_before_measuring(tmp_path: Path, cmd: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = _daemonkit(*cmd, "--report", str(blocker / "rep"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("daemonkit: ")
    assert "Traceback" not in r.stderr
    assert r.stdout == ""  # nothing was measured or printed
