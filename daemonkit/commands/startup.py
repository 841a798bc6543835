"""``daemonkit startup [--backend B] [--cycles N] [--json FILE]``: time the daemon's start.

Starts and stops the demo daemon N times per backend and prints, per stage, the median and
range of the time since the starter's first fork: the daemon exists (``pid``: both forks and
setsid done), its pidfile is locked, it reported ready, it accepted its first client
(:mod:`daemonkit.bench.startup`). ``--json`` writes the raw samples with the machine's
description (``daemonkit.startup/1``, checked by ``daemonkit/schemas/startup.schema.json``).
Exit 0, or 1 when a start failed.

*Kernel path* and *Lifetime*: see :mod:`daemonkit.bench.startup`. *See also*: daemon(7).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemonkit.commands.options import add_output_option, checked, is_stdout, write_output

__all__ = ["register"]

_LABELS = {
    "fork_to_pid_s": "pid",
    "fork_to_pidfile_s": "pidfile",
    "fork_to_ready_s": "ready",
    "fork_to_accept_s": "first accept",
}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``daemonkit startup``."""
    p = sub.add_parser(
        "startup",
        help="time the daemon's start: fork to pid, pidfile, ready, first accept",
        description="Start and stop the demo daemon repeatedly and report how long each "
        "stage took after the first fork (median and range per backend).",
    )
    p.add_argument(
        "--backend", choices=("native", "python-daemon", "both"), default="both",
        help="daemonizer to time (default both)",
    )  # fmt: skip
    p.add_argument("--cycles", type=_cycles, default=10, help="starts per backend (default 10)")
    add_output_option(p, "--json", "write the raw samples")
    p.set_defaults(func=run)


_cycles = checked(
    int, lambda v: 1 <= v <= 1000, "not a number: {text!r}",
    "cycles out of range [1, 1000]: {text!r}",
)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from daemonkit.bench.startup import STAGES, run_cycles, summarize
    from daemonkit.machine import describe
    from daemonkit.units import fmt_range

    backends = ["native", "python-daemon"] if args.backend == "both" else [args.backend]
    load = os.getloadavg()
    doc: dict[str, Any] = {
        "schema": "daemonkit.startup/1",  # daemonkit/schemas/startup.schema.json
        "kind": "startup",  # the first version's name for itself, kept for its readers
        "version": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "machine": describe(),
        "runs": {},
    }
    out = sys.stderr if is_stdout(args.json) else sys.stdout  # stdout may carry the JSON
    print(f"{args.cycles} starts per backend; load average {load[0]:.2f} {load[1]:.2f}", file=out)
    print(f"{'backend':<14}" + "".join(f"{_LABELS[s]:>26}" for s in STAGES), file=out)
    for backend in backends:
        samples = run_cycles(backend, args.cycles)
        summary = summarize(samples)
        doc["runs"][backend] = {"samples": samples, "summary": summary}
        cells = [
            fmt_range(v["median"] * 1e9, v["min"] * 1e9, v["max"] * 1e9).replace("\u2060", "")
            for v in (summary[s] for s in STAGES)
        ]
        print(f"{backend:<14}" + "".join(f"{c:>26}" for c in cells), file=out)
    print("median (min-max) since the starter's first fork", file=out)
    if args.json is not None:
        write_output(args.json, json.dumps(doc, indent=2) + "\n")
        if not is_stdout(args.json):
            print(f"raw samples: {args.json}")
    return 0
