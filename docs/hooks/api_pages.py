"""MkDocs hook: one API reference page per module of the ``daemonkit`` package, and the
navigation of the dated results pages.

The module list is read from the source tree at every build (no import of the package), so a
module that is added, moved or removed needs no change to the docs: its page and its entry in
the navigation follow. Each page holds one ``::: daemonkit.x.y`` directive that mkdocstrings
renders from the module's docstrings. Private modules (``_libc.py``, ``channels/_stream.py``)
are included: they hold the framing and C-library code a reader of a channel is sent to.

The "Results" section of the navigation lists every page under ``docs/results/``, newest first
(they are named ``YYYY-MM-DD-topic.md``), so adding a measured run is adding one file.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PACKAGE = "daemonkit"
SECTION = "API reference"
PREFIX = "reference"
RESULTS_SECTION = "Results"
RESULTS = "results"


def _source_root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).parent


def _modules(root: Path) -> list[tuple[str, Path]]:
    """(dotted name, file) of every module of the package, packages first, in path order."""
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return sorted(found, key=lambda item: item[0].split("."))


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return doc.strip().splitlines()[0] if doc else ""


def _page(name: str) -> str:
    return f"{PREFIX}/{name.replace('.', '/')}.md"


def _nav(modules: list[tuple[str, Path]]) -> list[Any]:
    """Overview first, then one section per package holding its modules."""
    nav: list[Any] = [{"Overview": f"{PREFIX}/index.md"}]
    packages = {name for name, path in modules if path.name == "__init__.py"}
    for package in sorted(packages, key=lambda n: n.split(".")):
        members = [
            {name: _page(name)}
            for name, _ in modules
            if name == package or (name.rpartition(".")[0] == package and name not in packages)
        ]
        nav.append({package: members})
    return nav


def _index(modules: list[tuple[str, Path]]) -> str:
    lines = [
        "# API reference",
        "",
        "One page per module, generated at build time from the docstrings by mkdocstrings. "
        "Modules whose name starts with `_` are private to their package (no stable interface) "
        "but are listed: they hold the framing and the C-library calls the channels rely on.",
        "",
        "| module | summary |",
        "|---|---|",
    ]
    for name, path in modules:
        summary = _summary(path).replace("|", "\\|")
        lines.append(f"| [`{name}`]({name.replace('.', '/')}.md) | {summary} |")
    return "\n".join(lines) + "\n"


def _results_nav(docs_dir: Path) -> list[Any]:
    """The results overview, then every dated page, newest first, titled by its heading."""
    nav: list[Any] = [f"{RESULTS}/index.md"]
    for page in sorted((docs_dir / RESULTS).glob("*.md"), reverse=True):
        if page.name != "index.md":
            title = page.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
            nav.append({title.replace("`", ""): f"{RESULTS}/{page.name}"})
    return nav


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    modules = _modules(_source_root(config))
    for entry in config.nav or []:
        if isinstance(entry, dict) and SECTION in entry:
            entry[SECTION] = _nav(modules)
        if isinstance(entry, dict) and RESULTS_SECTION in entry:
            entry[RESULTS_SECTION] = _results_nav(Path(config.docs_dir))
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    modules = _modules(_source_root(config))
    files.append(File.generated(config, f"{PREFIX}/index.md", content=_index(modules)))
    for name, _ in modules:
        files.append(File.generated(config, _page(name), content=f"::: {name}\n"))
    return files
