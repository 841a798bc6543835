"""Plots and the HTML report: views of the bench and lessons JSON, never new measurements.

``write_report(json_docs, out_dir, lang="en", compare=None) -> Path`` is the one entry point
(``daemonkit report``, ``daemonkit bench --report`` and ``daemonkit lessons --report`` all call
it). matplotlib is imported only when it runs, so the rest of daemonkit works without the
``plot`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_report"]


def write_report(
    json_docs: Sequence[dict[str, Any]],
    out_dir: Path,
    lang: str = "en",
    compare: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/plots/*.png``; return the page's path.

    ``json_docs``: parsed ``daemonkit.bench/1`` and/or ``daemonkit.lessons/2`` documents.
    ``lang``: ``"en"`` or ``"zh"``. ``compare``: an older document, drawn on the same axes as
    the current document of the same schema. Raises :class:`daemonkit.errors.UsageError` (bad
    language, nothing to report, matplotlib missing) or
    :class:`daemonkit.errors.DocumentError` (a document that does not match its schema).
    """
    from daemonkit.errors import UsageError

    try:
        import matplotlib  # noqa: F401  (only checks the plot extra is installed)
    except ImportError as err:
        raise UsageError(
            "the report needs matplotlib: install daemonkit with the 'plot' extra "
            "(pip install 'daemonkit[plot]')"
        ) from err
    from daemonkit.report.html import write_report as _write

    return _write(json_docs, out_dir, lang=lang, compare=compare)
