"""``daemonkit report RESULTS.json [...] --out DIR [--lang en|zh] [--compare OLD.json]``.

Reads one or more results documents (bench and/or lessons JSON), writes ``DIR/report.html``
with its plots under ``DIR/plots/``, and prints the page's path. Measures nothing.

*Kernel path*: reads the JSON files, writes the report files. *Lifetime*: the files stay.
*See also*: daemonkit.report.write_report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``daemonkit report``."""
    p = sub.add_parser(
        "report",
        help="plots and a self-contained HTML report from bench/lessons JSON",
        description="Draw the plots of bench and lessons results and write DIR/report.html "
        "(plots embedded; opens from disk, fetches nothing).",
    )
    p.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS.json",
        help="JSON written by 'daemonkit bench --json' or 'daemonkit lessons --json'",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="report language")
    p.add_argument(
        "--compare", type=Path, metavar="OLD.json", help="an older run to draw on the same axes"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from daemonkit.commands.options import prepare_out_dir
    from daemonkit.report import write_report
    from daemonkit.report.load import load_doc

    docs = [load_doc(path) for path in args.results]
    old = load_doc(args.compare) if args.compare is not None else None
    path = write_report(docs, prepare_out_dir(args.out), lang=args.lang, compare=old)
    print(path)
    return 0
