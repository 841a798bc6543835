"""Griffe extension: the reST roles of the docstrings, read as Markdown.

The docstrings cross-reference with reST roles (``:mod:`daemonkit.runtime```,
``:class:`~daemonkit.channels.base.End```), which Markdown would print literally. This turns
each into inline code; a ``:mod:`` naming a module of the package also becomes a link to that
module's API page (resolved by mkdocs-autorefs). ``~`` keeps only the last component, as in
Sphinx.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from griffe import Extension, Object

ROOT = Path(__file__).resolve().parents[2]
ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc|obj|const):`(~?)([\w.]+)`")


def _module_exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _replace(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    shown = target.rsplit(".", 1)[-1] if tilde else target
    if (
        match.group(0).startswith(":mod:")
        and target.startswith("daemonkit")
        and _module_exists(target)
    ):
        return f"[`{shown}`][{target}]"
    return f"`{shown}`"


class SphinxRoles(Extension):
    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_replace, obj.docstring.value)
