"""Sub-command ``trace``: the scheduler's own events around a short ping-pong, per case.

``daemonkit trace [--channels LIST] [--peer thread|process|both] [--cpu same|split|none]
[--size SIZE] [--round-trips N] [--json FILE] [--report DIR]`` runs each case with
``perf record`` switched on around the timed loop, then prints per case a text timeline of a
few consecutive round trips, a table of the per-round-trip figures from the trace (switches
beside getrusage's, wake-up latency, run time, idle time, futex sleeps), and a reading made of
sentences chosen by computed conditions.

Exit codes: 0 every case traced; 1 a case failed (its error is in the output and the JSON);
2 usage; 77 the scheduler's events cannot be recorded here (not root with
``perf_event_paranoid`` above -1, no tracefs, no perf): one line says which; 130 Ctrl-C.

*Kernel path*: see :mod:`daemonkit.trace.capture` and :mod:`daemonkit.trace.perf`.
*Lifetime*: each case's kernel objects, peer and perf process live as long as the case; the
ftrace state (``tracing_on``, ``current_tracer``, enabled events, instances) is not touched.
*See also*: perf-record(1), perf-script(1), sched(7), getrusage(2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemonkit.channels.base import PeerKind
from daemonkit.commands.options import (
    add_output_option,
    add_placement_options,
    add_report_option,
    is_stdout,
    parse_channels,
    parse_count,
    parse_sizes,
    parse_warmup,
    prepare_out_dir,
    write_output,
)

__all__ = ["register"]

DEFAULT_ROUND_TRIPS = 2000
DEFAULT_WARMUP = 200


def _one_size(text: str) -> int:
    sizes = parse_sizes(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"give one size, not {text!r}")
    return sizes[0]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``trace`` to the CLI."""
    p = sub.add_parser(
        "trace",
        help="see the context switches: the scheduler's events around a ping-pong",
        description="Run a short ping-pong of each case with the scheduler's events recorded "
        "(perf record: sched_switch, sched_waking, sched_wakeup, futex waits of the two ends), "
        "then show a timeline of a few round trips, the per-round-trip figures from the trace "
        "beside getrusage's, and a reading. Needs root (or perf_event_paranoid -1); exits 77 "
        "naming what is missing otherwise.",
    )
    p.add_argument(
        "--channels",
        type=parse_channels,
        default=["pipe"],
        metavar="A,B,...",
        help="channels to trace (default: pipe; see 'daemonkit channels')",
    )
    add_placement_options(p)
    p.add_argument(
        "--size", type=_one_size, default=64, metavar="SIZE", help="message size (default 64)"
    )
    p.add_argument(
        "--round-trips",
        type=parse_count,
        default=DEFAULT_ROUND_TRIPS,
        metavar="N",
        help=f"traced round trips per case (default {DEFAULT_ROUND_TRIPS})",
    )
    p.add_argument(
        "--warmup",
        type=parse_warmup,
        default=DEFAULT_WARMUP,
        metavar="N",
        help=f"untraced round trips first (default {DEFAULT_WARMUP})",
    )
    add_output_option(p, "--json", "write the daemonkit.trace/1 document")
    add_report_option(p)
    p.set_defaults(func=cmd_trace)


def cmd_trace(args: argparse.Namespace) -> int:
    from daemonkit.bench.results import check_writable
    from daemonkit.bench.views import console
    from daemonkit.trace import perf, run, views

    why = perf.missing()  # before anything is created: one line, exit 77
    if why is not None:
        raise perf.TraceUnavailableError(f"cannot record the scheduler's events: {why}")
    if args.json is not None and not is_stdout(args.json):
        check_writable(args.json)
    if args.report is not None:
        prepare_out_dir(args.report)
    peers: list[PeerKind] = ["process", "thread"] if args.peer == "both" else [args.peer]
    err = console(stderr=True)

    def progress(what: str) -> None:
        if err.is_terminal:
            err.print(f"tracing {what} ...", style="dim")

    doc = run.run(
        args.channels,
        peers,
        args.cpu,
        args.size,
        args.round_trips,
        args.warmup,
        [Path(sys.argv[0]).name, *sys.argv[1:]],
        progress,
    )
    if is_stdout(args.json):
        write_output(args.json, json.dumps(doc, indent=1) + "\n")
    elif args.json is not None:
        run.write_json(doc, args.json)

    out = console(stderr=is_stdout(args.json))  # standard output may carry the JSON
    note = doc["machine"]["pinning"].get("note")
    if note:
        out.print(note, markup=False)
    measured = [c for c in doc["cases"] if "timeline" in c]
    for case in measured:
        out.print(views.timeline_text(case))
    if measured:
        out.print(views.figures_table(measured))
    for case in doc["cases"]:
        if "timeline" not in case:
            what = f"error: {case['error']}" if "error" in case else f"skipped: {case['skipped']}"
            out.print(f"{case['channel']} {case['peer']}: {what}", markup=False)
    if doc["reading"]:
        out.print(f"\nReading: {doc['reading']}", markup=False)
    if args.report is not None:
        from daemonkit.report import write_report

        out.print(f"report: {write_report([doc], args.report)}", markup=False)
    return 1 if any("error" in c for c in doc["cases"]) else 0
