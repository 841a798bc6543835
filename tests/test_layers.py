"""The import rule of the package, read from the source: layers, and no two packages in a loop.

Every module of ``daemonkit`` is parsed with :mod:`ast` and every import in it is collected,
those inside functions and under ``if TYPE_CHECKING:`` too (a deferred import is still a
dependency). Each top-level package or module of ``daemonkit`` belongs to one layer below; a
module may import from its own layer and the layers below it, never from one above.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import daemonkit

# The layers, top first. A name is a top-level package or module of daemonkit
# ("__init__" is daemonkit/__init__.py itself). A new package or module goes into one of them.
LAYERS: dict[str, frozenset[str]] = {
    # argument parsing, printing, exit codes
    "commands": frozenset({"commands", "cli", "__main__"}),
    # what daemonkit does; may use channels and ground, and each other without loops
    "features": frozenset({"daemon", "service", "bench", "remote", "lessons", "report", "trace"}),
    # one module per IPC mechanism behind channels/base.py
    "channels": frozenset({"channels"}),
    # facts and helpers every layer may use
    "ground": frozenset(
        {
            "__init__",
            "errors",
            "runtime",
            "machine",
            "procinfo",
            "_libc",
            "interrupts",
            "cleanup",
            "units",
            "schemas",
            "backoff",
        }
    ),
}

PACKAGE_DIR = Path(daemonkit.__file__).parent
_RANK = {name: rank for rank, members in enumerate(LAYERS.values()) for name in members}
_LAYER_OF = {name: layer for layer, members in LAYERS.items() for name in members}


def _module_name(path: Path) -> str:
    parts = ["daemonkit", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported(path: Path) -> set[str]:
    """The daemonkit modules (dotted names) that *path* imports anywhere in its body."""
    return _imports_in(path.read_text(), _module_name(path), _is_package(path))


def _imports_in(source: str, module: str, is_package: bool) -> set[str]:
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1 more
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            out.add(source)
            # `from daemonkit import bench` imports the module daemonkit.bench
            out.update(f"{source}.{a.name}" for a in node.names)
    return {m for m in out if m == "daemonkit" or m.startswith("daemonkit.")}


def _top(module: str) -> str:
    """The top-level name a dotted module belongs to (daemonkit itself is "__init__")."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _top_levels() -> set[str]:
    """Every top-level package or module of daemonkit, as found on disk."""
    names = {p.stem for p in PACKAGE_DIR.glob("*.py")}
    names |= {p.parent.name for p in PACKAGE_DIR.glob("*/__init__.py")}
    return names


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) top-level names -> the "module imports module" lines behind it."""
    known = _top_levels()
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        src = _module_name(path)
        for dst in sorted(_imported(path)):
            a, b = _top(src), _top(dst)
            if b not in known:  # `from daemonkit import __version__`: an attribute
                b = "__init__"
            if a != b:
                edges.setdefault((a, b), []).append(f"{src} imports {dst}")
    return edges


def test_every_package_has_a_layer() -> None:
    unknown = sorted(_top_levels() - set(_RANK))
    assert not unknown, (
        f"daemonkit/{unknown[0]} is in no layer: add it to LAYERS at the top of "
        f"tests/test_layers.py (commands, features, channels or ground)"
    )


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{why} ({_LAYER_OF[a]} -> {_LAYER_OF[b]})"
        for (a, b), whys in _edges().items()
        if a in _RANK and b in _RANK and _RANK[b] < _RANK[a]
        for why in whys
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_two_packages_import_each_other() -> None:
    """No loop at all among the top-level names: A -> B -> ... -> A."""
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        graph.setdefault(a, set()).add(b)
    edges = _edges()

    def loop_from(start: str) -> list[str] | None:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return [*trail, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    for name in sorted(graph):
        trail = loop_from(name)
        assert trail is None, (
            "packages in a loop: "
            + " -> ".join(trail)
            + "\n"
            + "\n".join(edges[(a, b)][0] for a, b in itertools.pairwise(trail))
        )


def test_the_rule_sees_deferred_and_relative_imports() -> None:
    """Imports inside a function, under TYPE_CHECKING and relative ones all count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from daemonkit.report import html\n"
        "def f():\n    from ..commands import bench\n    import daemonkit.cli\n"
        "from . import peer\n"
    )
    found = _imports_in(source, "daemonkit.bench.sample", is_package=False)
    assert {_top(m) for m in found} == {"report", "commands", "cli", "bench"}
    assert "daemonkit.bench.peer" in found


def test_the_command_line_loads_no_heavy_library() -> None:
    """Assembling every command (``daemonkit --help``) imports neither numpy, rich, pyzmq nor
    matplotlib: the commands import them when they run, so ``--help`` is quick and a command
    that needs none of them (``inspect`` run by another user with the system's Python) works
    where they are not installed."""
    import subprocess
    import sys

    code = (
        "import sys; from daemonkit.cli import build_parser; build_parser(); "
        "print(' '.join(m for m in ('numpy', 'rich', 'zmq', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == [], f"daemonkit --help imports {out}"

