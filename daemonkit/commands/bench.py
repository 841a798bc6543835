"""Sub-commands ``bench``, ``channels`` and ``cleanup``.

``bench`` parses its options, plans the cases, runs them with a progress bar (refreshed by
hand between batches: no refresh thread runs while peers are forked), then writes the JSON and
CSV views and prints the table. ``channels`` lists the registry. ``cleanup`` removes what
processes that died without cleaning up left in the kernel and in the runtime directory.

*Kernel path*: see :mod:`daemonkit.bench.runner` and its targets (bench) and
:mod:`daemonkit.cleanup` (``shm_unlink``, ``mq_unlink``, ``sem_unlink``,
``shmctl``/``semctl``/``msgctl`` with ``IPC_RMID``, ``unlink`` of runtime files).
*Lifetime*: ``cleanup`` removes only objects whose owner pid (in the name or System V key) no
longer exists; ``--dry-run`` removes nothing.
*See also*: sysvipc(7), shm_overview(7), mq_overview(7), sem_overview(7).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemonkit.channels import channel_class, channel_names
from daemonkit.channels.base import PeerKind
from daemonkit.commands.options import (
    add_output_option,
    add_placement_options,
    add_report_option,
    is_stdout,
    parse_channels,
    parse_count,
    parse_seconds,
    parse_sizes,
    parse_warmup,
    prepare_out_dir,
    write_output,
)
from daemonkit.errors import DaemonkitError, RuntimeDirError, UsageError
from daemonkit.remote.wire import REMOTE_CHANNELS

if TYPE_CHECKING:
    from daemonkit.bench.measure import Settings
    from daemonkit.bench.references import Reference
    from daemonkit.bench.results import Result, Run
    from daemonkit.bench.runner import Case, Target
    from daemonkit.machine import Placement

__all__ = ["register"]

DEFAULTS = {"iterations": 10_000, "warmup": 1_000}
QUICK = {"iterations": 1_000, "warmup": 100}


class NothingMeasuredError(DaemonkitError):
    """The run measured no case at all (every case failed, was skipped, or none was planned)."""


# -- registration -----------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``bench``, ``channels`` and ``cleanup`` to the CLI."""
    b = sub.add_parser(
        "bench",
        help="measure round trips over every IPC channel, side by side",
        description="Ping-pong round trips over each channel: the client sends SIZE bytes, "
        "the peer echoes them (or posts back); every round trip is timed.",
    )
    b.add_argument(
        "--channels",
        type=parse_channels,
        default=None,
        metavar="A,B,...",
        help="channels to measure (default: all; see 'daemonkit channels')",
    )
    add_placement_options(b)
    b.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[64],
        metavar="0,64,4K,64K,1M",
        help="message sizes in bytes, K and M suffixes (default: 64)",
    )
    length = b.add_mutually_exclusive_group()
    length.add_argument(
        "--iterations",
        type=parse_count,
        metavar="N",
        help=f"timed round trips per case (default {DEFAULTS['iterations']})",
    )
    length.add_argument(
        "--duration",
        type=parse_seconds,
        metavar="S",
        help="time each case for S seconds instead of N round trips",
    )
    b.add_argument(
        "--warmup",
        type=parse_warmup,
        metavar="N",
        help=f"untimed round trips first (default {DEFAULTS['warmup']})",
    )
    b.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['iterations']} round trips, {QUICK['warmup']} warm-up",
    )
    b.add_argument(
        "--mode",
        choices=("pingpong", "stream"),
        default="pingpong",
        help="pingpong: timed round trips (default); stream: one-way messages pipelined, "
        "messages/s and MB/s (like lmbench's bw_pipe)",
    )
    b.add_argument(
        "--reference",
        action="store_true",
        help="also run the C tools installed (perf bench sched pipe, lmbench's lat_*) and bare "
        "Python loops, pinned the same way, as reference rows",
    )
    add_output_option(b, "--json", "write the results document")
    add_output_option(b, "--csv", "write one CSV row per result")
    b.add_argument(
        "--wide", action="store_true", help="the full table even where the terminal is narrower"
    )
    add_report_option(b)
    b.add_argument(
        "--compare",
        type=Path,
        metavar="OLD.json",
        help="compare with an earlier run on this machine, as 'daemonkit compare' does",
    )
    b.add_argument(
        "--force", action="store_true", help="compare even with a run from another machine"
    )
    b.add_argument(
        "--target",
        choices=("local", "daemon"),
        default="local",
        help="local: a peer of this run (default); daemon: the running demo daemon's endpoints",
    )
    b.add_argument(
        "--runtime-dir", type=Path, metavar="DIR", help="with --target daemon: where it runs"
    )
    b.add_argument(
        "--pidfile",
        type=Path,
        metavar="PATH",
        help="with --target daemon: default RUNTIME_DIR/daemonkit.pid",
    )
    from daemonkit.commands.remote import add_bench_connect

    add_bench_connect(b)  # --connect: a remote peer (daemonkit.remote)
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("channels", help="list the IPC channels, one line each")
    c.set_defaults(func=cmd_channels)

    k = sub.add_parser(
        "cleanup",
        help="remove kernel objects and runtime files left by dead daemonkit processes",
    )
    k.add_argument("--dry-run", action="store_true", help="list what would be removed")
    k.add_argument(
        "--runtime-dir",
        type=Path,
        metavar="DIR",
        help="runtime directory to look in (default: the daemon's)",
    )
    k.set_defaults(func=cmd_cleanup)


# -- bench ------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from daemonkit import machine
    from daemonkit.bench import results, stats, views
    from daemonkit.bench.measure import Settings

    base = QUICK if args.quick else DEFAULTS
    iterations = None if args.duration else (args.iterations or base["iterations"])
    warmup = base["warmup"] if args.warmup is None else args.warmup
    peers: list[PeerKind] = ["process", "thread"] if args.peer == "both" else [args.peer]
    if args.target == "daemon" and args.connect:
        raise UsageError("--target daemon and --connect name two different peers: pick one")
    if args.mode == "stream" and (args.connect or args.target == "daemon"):
        raise UsageError("--mode stream runs with a local peer only (--target local)")
    default_channels = channel_names()
    if args.connect:
        default_channels = list(REMOTE_CHANNELS)
    elif args.target == "daemon":
        from daemonkit.bench.targets.daemon import DAEMON_CHANNELS

        default_channels = list(DAEMON_CHANNELS)
    channels = args.channels or default_channels

    if is_stdout(args.json) and is_stdout(args.csv):
        raise UsageError("--json - and --csv - would both write to standard output: pick one")
    for out_path in (args.json, args.csv):
        if out_path is not None and not is_stdout(out_path):
            results.check_writable(out_path)  # found out now, not after minutes of measuring
    if args.report is not None:
        prepare_out_dir(args.report)
    here = machine.describe()
    old = None
    if args.compare:  # refuse before measuring anything, not after a minute of work
        from daemonkit.bench.compare import distributions, refuse_other_machine

        old = results.load(args.compare)
        distributions(old, str(args.compare))  # a stored distribution that cannot be read
        if not args.force:
            refuse_other_machine(old, here, str(args.compare))

    place = machine.placement(args.cpu)
    settings = Settings(iterations, args.duration, warmup, args.mode)
    target = _target(args, peers)
    try:
        cases = target.plan(channels, args.sizes, args.cpu)
        here.update(target.metadata())
        overhead = stats.timer_overhead_ns()
        found = _run_with_progress(target, cases, settings, place)
    finally:
        target.close()
    refs = _references(args, channels, iterations, place)

    here["pinning"] = {
        "mode": place.mode,
        "client": sorted({c for r in found if r.pinning for c in r.pinning["client"]}),
        "peer": sorted({c for r in found if r.pinning for c in r.pinning["peer"]}),
        "requested_client": place.client_cpu,
        "requested_peer": place.peer_cpu,
        "note": place.note,
    }
    run = results.Run(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=[Path(sys.argv[0]).name, *sys.argv[1:]],  # this process's command line
        options={
            "channels": channels,
            "peer": "remote"
            if args.connect
            else "daemon"
            if args.target == "daemon"
            else args.peer,
            "target": args.target,
            "connect": args.connect.zmq_url if args.connect else None,
            "cpu": args.cpu,
            "sizes": args.sizes,
            "iterations": iterations,
            "duration": args.duration,
            "warmup": warmup,
            "quick": args.quick,
            "reference": args.reference,
            "mode": args.mode,
        },
        machine=here,
        timer_overhead_ns=overhead,
        results=found,
        references=[asdict(ref) for ref in refs],
    )
    if args.json:
        write_output(args.json, json.dumps(run.to_json(), indent=1) + "\n")
    if args.csv:
        write_output(args.csv, results.to_csv(run.results))

    # Standard output may carry the JSON or the CSV: the tables then go to standard error.
    out = views.console(stderr=is_stdout(args.json) or is_stdout(args.csv), wide=args.wide)
    for table in [*views.result_tables(run, out.width), *views.stream_tables(run)]:
        out.print(table)
    for line in [
        *views.fastest_lines(run),
        *views.reference_lines(run),
        *views.unmeasured_lines(run.results),
        *_quality_lines(run),
        *views.machine_lines(run),
    ]:
        out.print(line, markup=False)
    if out.width < views.FULL_WIDTH and run.results and not args.wide:
        out.print("(compact table: --wide for p90, p99.9, max, MB/s, context switches and "
                  "each end's CPU time)", markup=False)  # fmt: skip
    if old is not None:
        from daemonkit.bench.compare import NOISE_MARGIN, compare_runs
        from daemonkit.commands.compare import show

        show(out, compare_runs(old, run, str(args.compare), "this run"))
        out.print(views.significance_line(NOISE_MARGIN), markup=False)
    if args.report is not None:
        from daemonkit.report import write_report

        older = old.to_json() if old is not None else None
        page = write_report([run.to_json()], args.report, compare=older)
        out.print(f"report: {page}", markup=False, soft_wrap=True)  # a path is never wrapped
    if not any(r.measured for r in run.results):
        raise NothingMeasuredError(_nothing_measured_why(run.results, channels, peers))
    return 1 if any(r.error for r in run.results) else 0


def _nothing_measured_why(found: list[Result], channels: list[str], peers: Sequence[str]) -> str:
    """One line: why a run measured nothing."""
    if not found:
        return (
            f"nothing was measured: no channel of {', '.join(channels)} runs with "
            f"peer {' or '.join(peers)} (see 'daemonkit channels')"
        )
    first = next(r for r in found if r.error or r.skipped)
    why = f"{first.channel} {first.peer}: {first.error or first.skipped}"
    return f"nothing was measured: every case failed or was skipped (first: {why})"


def _quality_lines(run: Run) -> list[str]:
    from daemonkit.bench.quality import assess, warning_line

    line = warning_line(assess(run))
    return [line] if line else []


def _references(
    args: argparse.Namespace, channels: list[str], iterations: int | None, place: Placement
) -> list[Reference]:
    """With ``--reference``: the C tools and the bare Python loops; without it, the bare
    busy-poll loop whenever ``shm-spin`` ran, since its verdict is held against it."""
    from daemonkit.bench.references import c_references, python_references

    if args.connect or args.target == "daemon" or args.peer == "thread" or args.mode == "stream":
        return []  # the references are local round trips: nothing to hold them against
    n = min(iterations or _REFERENCE_N, _REFERENCE_N)
    loops = channels if args.reference else [c for c in channels if c == "shm-spin"]
    refs = python_references(loops, args.sizes, n, place)
    if args.reference:
        refs += c_references(max(n, _REFERENCE_N), place)
    return refs


_REFERENCE_N = 10_000  # round trips of each bare loop or C tool


def _target(args: argparse.Namespace, peers: list[PeerKind]) -> Target:
    """Where the other ends live: a ``daemonkit serve``, the running daemon, or here."""
    if args.connect:
        from daemonkit.bench.targets.remote import RemoteTarget

        return RemoteTarget(args.connect)
    if args.target == "daemon":
        from daemonkit.bench.targets.daemon import DaemonTarget

        return DaemonTarget(args.runtime_dir, args.pidfile)
    from daemonkit.bench.targets.local import LocalTarget

    return LocalTarget(peers, args.mode)


def _run_with_progress(
    target: Target, cases: list[Case | Result], settings: Settings, place: Placement
) -> list[Result]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from daemonkit.bench import runner, views

    err = views.console(stderr=True)
    if not err.is_terminal:  # a log file or a pipe: no bar to draw
        return runner.run(target, cases, settings, place)
    # auto_refresh=False: rich would otherwise run a refresh thread, alive across fork().
    with Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed:>5.1f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=err,
        auto_refresh=False,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=len(cases))

        def on_progress(i: int, what: str, frac: float) -> None:
            bar.update(task, completed=i + frac, description=what)
            bar.refresh()

        return runner.run(target, cases, settings, place, on_progress)


# -- channels ---------------------------------------------------------------------------------


def cmd_channels(args: argparse.Namespace) -> int:
    for name in channel_names():
        try:
            cls = channel_class(name)
        except ImportError as exc:
            print(f"{name:<15} (not available: {exc})")
            continue
        peers = "+".join(k for k in ("process", "thread") if k in cls.peer_kinds)
        payload = "payload" if cls.payload else "no payload"
        print(f"{name:<15} {payload:<10} {peers:<14} {cls.summary}")
    return 0


# -- cleanup ----------------------------------------------------------------------------------


def cmd_cleanup(args: argparse.Namespace) -> int:
    from daemonkit.cleanup import list_objects, remove_object
    from daemonkit.runtime import ensure_private_dir, resolve_runtime_dir

    rdir = resolve_runtime_dir(args.runtime_dir)
    dirs = []
    try:
        os.lstat(rdir)  # not Path.exists(): a parent we may not search is an error, not "absent"
    except FileNotFoundError:
        pass  # no runtime dir: only the kernel's tables to look at
    except OSError as exc:
        raise RuntimeDirError(f"runtime dir {rdir}: {exc.strerror}") from exc
    else:
        dirs.append(ensure_private_dir(rdir))  # never unlink inside a dir someone else controls
    objs = list_objects(dirs)
    dead = [o for o in objs if not o.owner_alive]
    failed = 0
    removal_errors: tuple[type[Exception], ...] = (OSError, *_ipc_errors())
    for obj in dead:
        what = f"{obj.kind} {obj.name} (owner pid {obj.owner} is gone)"
        if args.dry_run:
            print(f"would remove {what}")
            continue
        try:
            remove_object(obj)
        except removal_errors as exc:
            failed += 1
            print(f"daemonkit: cannot remove {what}: {exc}", file=sys.stderr)
        else:
            print(f"removed {what}")
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(dead) - failed} leftover(s); "
        f"{len(objs) - len(dead)} object(s) of running processes left alone"
    )
    return 1 if failed else 0


def _ipc_errors() -> tuple[type[Exception], ...]:
    import posix_ipc
    import sysv_ipc

    return (posix_ipc.Error, sysv_ipc.Error)
