"""The terminal table fits the terminal, output options write to standard output with ``-``,
and the small mistakes get one line that says what to type instead."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

DK = [sys.executable, "-m", "daemonkit"]
SHORT = ["--iterations", "200", "--warmup", "20"]
# The longest channel name, a notification channel and a payload one: the widest cells.
CHANNELS = "th-simplequeue,signal,unix-stream"


def dk(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([*DK, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(("columns", "full"), [(80, False), (100, False), (160, True)])
def test_the_table_fits_the_terminal_and_cuts_no_cell(columns: int, full: bool) -> None:
    r = dk("bench", "--channels", CHANNELS, *SHORT, columns=columns)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in r.stdout
    assert any(line.split()[:1] == ["th-simplequeue"] for line in lines)  # never folded
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["channel", "peer"])
    assert ("p99.9" in lines[header]) == full
    assert "fastest" in lines[header] or "fastest" in lines[header - 1]
    if not full:  # what the compact table leaves out, and how to get it
        assert "--wide" in r.stdout
    assert " is " in r.stdout and "x faster than" in r.stdout  # the hyperfine-style line


def test_wide_prints_every_column_even_on_a_narrow_terminal() -> None:
    r = dk("bench", "--channels", "pipe", "--peer", "thread", *SHORT, "--wide", columns=80)
    assert r.returncode == 0, r.stderr
    assert "p99.9" in r.stdout and "…" not in r.stdout


def test_json_and_csv_dash_write_to_standard_output_and_the_table_to_standard_error() -> None:
    r = dk("bench", "--channels", "pipe", "--peer", "thread", *SHORT, "--json", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "daemonkit.bench/1" and "round trips of" in r.stderr
    assert not os.path.exists("-")
    r = dk("bench", "--channels", "pipe", "--peer", "thread", *SHORT, "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.returncode == 0 and rows[0]["channel"] == "pipe"
    r = dk("bench", "--channels", "pipe", *SHORT, "--json", "-", "--csv", "-")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stdout == ""


def test_a_run_that_measures_nothing_exits_1_with_one_line_why() -> None:
    r = dk("bench", "--channels", "th-queue", "--peer", "process")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()
    assert len(last) == 1 and last[0].startswith("daemonkit: nothing was measured")
    assert "runs between threads only" in last[0]


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["bench", "--channels", "pipe,unix-stram"], "did you mean 'unix-stream'?"),
        (["bench", "--sizes", "64KB"], "did you mean '64K'?"),
        (["lessons", "adress-space"], "did you mean 'address-space'?"),
    ],
)
def test_a_mistyped_name_suggests_the_nearest_and_gives_its_hint_once(
    args: list[str], suggestion: str
) -> None:
    r = dk(*args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert suggestion in r.stderr and r.stderr.count("(see '") <= 1
