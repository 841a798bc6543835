"""The documentation: the site builds in strict mode, and every file the docs name exists.

``mkdocs build --strict`` fails on any warning: a link to a missing page or anchor, a page left
out of the navigation, a docstring mkdocstrings cannot render. The API pages are generated from
the package at build time (``docs/hooks/api_pages.py``), so this also renders every module's
docstrings. The build runs in a child process into a temporary directory; nothing is written
to the work tree.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A path into the repository as the docs write it: `daemonkit/daemon/native.py`, `scripts/demo`,
# `services/`, `.ci/run`. Not preceded by a path character, so /run/daemonkit/x is not one.
REPO_PATH = re.compile(r"(?<![\w/.$~-])((?:daemonkit|tests|scripts|services|docs|\.ci)/[\w./-]*)")

PLACEHOLDER = re.compile(r"\b[A-Z]{2,}\b")


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_site_builds_in_strict_mode_without_warnings(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    pages = list((tmp_path / "site").rglob("index.html"))
    api_pages = list((tmp_path / "site" / "reference").rglob("index.html"))
    modules = [p for p in (ROOT / "daemonkit").rglob("*.py") if p.name != "__main__.py"]
    # one page per module plus the overview: a module left out of the reference fails here
    assert len(api_pages) == len(modules) + 1, (len(api_pages), len(modules))
    assert len(pages) > len(api_pages)


def test_every_repository_path_the_docs_name_exists() -> None:
    missing = []
    for doc in _doc_files():
        for lineno, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in REPO_PATH.finditer(line):
                name = match.group(1).rstrip(".")
                if PLACEHOLDER.search(name):  # daemonkit/channels/NAME.py: a template
                    continue
                if not (ROOT / name).exists():
                    missing.append(f"{doc.relative_to(ROOT)}:{lineno}: {name}")
    assert not missing, "\n".join(missing)


def test_readme_links_into_docs_resolve() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?!https?:|#)[^)#\s]+)(?:#[^)]*)?\)", text)
    assert targets, "the README links to no page of docs/"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
