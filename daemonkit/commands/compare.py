"""``daemonkit compare OLD.json NEW.json [...]``: bench runs side by side, offline.

Reads two or more ``daemonkit bench --json`` documents (each checked against its schema
first), refuses runs from another machine unless ``--force``, and prints per case the p50
and p99 ratios new/old with their significance, then one hyperfine-style line with the
geometric mean. The first document is the reference; each further one is compared with it.
``--json PATH`` (``-``: standard output) writes the ``daemonkit.compare/1`` document.
``bench --compare OLD.json`` prints the same comparison for the run it just measured.

*Kernel path*: reads the documents; writes the optional JSON. *Lifetime*: nothing kept.
*See also*: :mod:`daemonkit.bench.compare` (the statistics and why a bootstrap).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemonkit.commands.options import add_output_option, write_output
from daemonkit.errors import DaemonkitError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from daemonkit.bench.compare import Comparison

__all__ = ["register", "show"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``daemonkit compare``."""
    p = sub.add_parser(
        "compare",
        help="compare saved bench runs: p50/p99 ratios with significance",
        description="Compare 'daemonkit bench --json' runs: per case the p50 and p99 ratios "
        "new/old, each marked faster, slower or not significant (a bootstrap of the stored "
        "distributions; a change must exceed the run-to-run noise margin), and the geometric "
        "mean. "
        "The first run is the reference.",
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="OLD.json NEW.json ...")
    p.add_argument("--force", action="store_true", help="compare even runs from different machines")
    p.add_argument(
        "--margin",
        type=parse_margin,
        default=None,
        metavar="PERCENT",
        help="run-to-run noise a change must exceed to be significant (default 10)",
    )
    add_output_option(p, "--json", "write the comparison document")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from daemonkit.bench import compare, results, views

    if len(args.runs) < 2:
        raise UsageError("compare needs two runs or more: OLD.json NEW.json [...]")
    runs = [results.load(path) for path in args.runs]  # every document checked first
    reference, ref_name = runs[0], str(args.runs[0])
    if not args.force:
        for run in runs[1:]:
            compare.refuse_other_machine(reference, run.machine, ref_name)
    margin = compare.NOISE_MARGIN if args.margin is None else args.margin
    comparisons = [
        compare.compare_runs(reference, run, ref_name, str(path), margin)
        for path, run in zip(args.runs[1:], runs[1:], strict=True)
    ]
    if args.json is not None:
        doc = compare.document(
            comparisons,
            datetime.now(UTC).isoformat(timespec="seconds"),
            [Path(sys.argv[0]).name, *sys.argv[1:]],
            margin,
        )
        write_output(args.json, json.dumps(doc, indent=1) + "\n")
    out = views.console(stderr=str(args.json) == "-")  # stdout carries the JSON
    for cmp in comparisons:
        show(out, cmp)
    out.print(views.significance_line(margin), markup=False)
    if not any(cmp.cases for cmp in comparisons):
        raise NothingComparedError("nothing was compared: no case was measured in both runs")
    return 0


def parse_margin(text: str) -> float:
    """A percentage from 0 to 100, as a fraction."""
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to 100")
    return value / 100


class NothingComparedError(DaemonkitError):
    """No case was measured in both runs."""


def show(out: Console, cmp: Comparison) -> None:
    """Print one comparison: its table (compact when the terminal is narrow), its lines."""
    from daemonkit.bench import views

    if cmp.cases:
        out.print(views.comparison_table(cmp, out.width))
    for line in views.comparison_lines(cmp):
        out.print(line, markup=False)
