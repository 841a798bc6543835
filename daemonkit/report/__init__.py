"""Plots and the HTML report: views of the bench and lessons JSON, never new measurements.

``write_report(json_docs, out_dir, lang="en", compare=None) -> Path`` is the one entry point
(``daemonkit report``, ``daemonkit bench --report`` and ``daemonkit lessons --report`` all call
it). matplotlib is imported only when it runs, so the rest of daemonkit works without the
``plot`` extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_report_option", "prepare_out_dir", "write_report"]


def add_report_option(parser: argparse.ArgumentParser) -> None:
    """``--report DIR`` for a command that measures: draw what it measured when it is done."""
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write plots and DIR/report.html (as 'daemonkit report' would)",
    )


def prepare_out_dir(out: Path) -> Path:
    """Create the report directory *out* now, so that a path that cannot be written is a
    one-line error before anything is measured, not after a run of minutes."""
    import os

    from daemonkit.errors import DaemonkitError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DaemonkitError(f"{out}: cannot create: {err.strerror}") from err
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise DaemonkitError(f"{out}: not a writable directory")
    return out


def write_report(
    json_docs: Sequence[dict[str, Any]],
    out_dir: Path,
    lang: str = "en",
    compare: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/plots/*.png``; return the page's path.

    ``json_docs``: parsed ``daemonkit.bench/1`` and/or ``daemonkit.lessons/1`` documents.
    ``lang``: ``"en"`` or ``"zh"``. ``compare``: an older document, drawn on the same axes as
    the current document of the same schema. Raises :class:`daemonkit.errors.UsageError` (bad
    language, nothing to report, matplotlib missing) or
    :class:`daemonkit.report.load.ReportInputError` (a document of unknown schema).
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
