"""Every ``sh`` command block of README.md runs verbatim, as a new user would paste it.

The blocks are read from README.md when the tests run (so an edited README is what is tested),
and each runs in ``bash -e`` from the repository root with a fresh ``HOME``, a fresh
``XDG_RUNTIME_DIR`` (hence a fresh default runtime dir), no ``DAEMONKIT_RUNTIME_DIR`` and
``.venv/bin`` first on ``PATH``, which is what "``daemonkit`` on ``PATH``" means in the README.
A failure names the block, its first line and its line number in README.md.

Blocks that are not run, and why (each skips with that reason):

* the quick start (``scripts/demo``, ``scripts/test``): ``scripts/test`` runs this very suite;
* the pip install block: it builds and installs packages (network, a minute), so it runs only
  with ``DAEMONKIT_TEST_INSTALL=1``.

The manual's pages (docs/) are not run: their blocks need a second host, sudo and systemd, or
run in the foreground until stopped (``daemonkit run``, ``serve``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the first command in README.md
    text: str

    @property
    def name(self) -> str:
        first = self.text.splitlines()[0] if self.text.strip() else "(empty)"
        return f"README.md:{self.line} {first}"


def sh_blocks(path: Path) -> list[Block]:
    """The contents of the ```sh fenced blocks of a Markdown file, in order."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if current is None and line.strip() == "```sh":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append(Block(start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _why_not(block: Block) -> str | None:
    if "scripts/test" in block.text:
        return "the quick start: scripts/test runs this suite itself"
    if "pip install" in block.text and os.environ.get("DAEMONKIT_TEST_INSTALL") != "1":
        return "installs packages (network, a minute): set DAEMONKIT_TEST_INSTALL=1 to run it"
    return None


BLOCKS = sh_blocks(README)


def test_readme_has_command_blocks() -> None:
    assert len(BLOCKS) >= 3, "README.md lost its ```sh command blocks"


def _runtime_dirs(text: str) -> set[Path]:
    """Directories a block names with --runtime-dir: made fresh before, removed after."""
    words = text.split()
    return {Path(words[i + 1]) for i, w in enumerate(words[:-1]) if w == "--runtime-dir"}


def _daemonkit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemonkit", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_runs_verbatim(block: Block, tmp_path: Path) -> None:
    why = _why_not(block)
    if why:
        pytest.skip(why)
    dirs = _runtime_dirs(block.text)
    for d in dirs:
        if d.exists():
            if _daemonkit("status", "--runtime-dir", d).returncode in (0, 4):
                pytest.skip(f"{d} is in use by a running daemon (another run of this test?)")
            shutil.rmtree(d)  # a leftover of an interrupted run: fresh means fresh
    made = {Path(m) for m in re.findall(r"/tmp/[\w.-]+", block.text)}
    made = {p for p in made if not p.exists()}  # what the block creates under /tmp: removed after
    home = tmp_path / "home"
    home.mkdir()
    xdg = Path(tempfile.mkdtemp(prefix="dk-xdg.", dir="/tmp"))  # short: sun_path limit
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAEMONKIT_", "XDG_"))}
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(xdg), PATH=f"{ROOT}/.venv/bin:{env['PATH']}")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the venv running the tests
    try:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        for d in dirs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                _daemonkit("stop", "--runtime-dir", d)
            shutil.rmtree(d, ignore_errors=True)
        _daemonkit("stop", "--runtime-dir", xdg / "daemonkit")
        shutil.rmtree(xdg, ignore_errors=True)
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
    tail = "\n".join((done.stderr or done.stdout).splitlines()[-8:])
    assert done.returncode == 0, f"{block.name}: exit {done.returncode}\n{tail}"
    assert "Traceback" not in done.stderr, f"{block.name}: a traceback\n{done.stderr}"
