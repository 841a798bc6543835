"""The ``daemonkit`` command line: one sub-command per feature, errors as one line.

Each feature module owns its sub-commands: it exposes ``register(subparsers)``, which adds
parsers whose ``func`` default takes the parsed arguments and returns an exit code. This module
only assembles them and turns :class:`~daemonkit.errors.DaemonkitError` into
``daemonkit: <message>`` with the error's exit code. Feature modules import their heavy
dependencies inside the command functions so that ``daemonkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from daemonkit import __version__
from daemonkit.errors import DaemonkitError
from daemonkit.interrupts import INTERRUPTS, InterruptRecord, record_interrupts

__all__ = ["ArgumentParser", "main"]

# Modules that provide sub-commands, in the order --help lists them.
COMMAND_MODULES = (
    "daemonkit.commands.service",  # start restart stop status reload run
    "daemonkit.commands.bench",  # bench channels cleanup
    "daemonkit.commands.compare",  # compare
    "daemonkit.commands.lessons",  # lessons
    "daemonkit.commands.report",  # report
    "daemonkit.commands.remote",  # serve throughput
    "daemonkit.commands.inspect",  # inspect
    "daemonkit.commands.startup",  # startup
    "daemonkit.commands.trace",  # trace
    "daemonkit.commands.unit",  # unit
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors reported as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        hint = "" if "(see '" in message else f" (see '{self.prog} --help')"  # one hint
        self.exit(2, f"daemonkit: {message}{hint}\n")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="daemonkit",
        description="Unix daemons and IPC, shown with real processes and real measurements.",
    )
    parser.add_argument("--version", action="version", version=f"daemonkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the process's handling of SIGINT, SIGTERM and SIGHUP is put back as it
    was afterwards."""
    old_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_interrupt
    try:
        with record_interrupts() as ctrl_c:
            return _run(argv, ctrl_c)
    finally:
        sys.unraisablehook = old_hook


def _run(argv: Sequence[str] | None, ctrl_c: InterruptRecord) -> int:
    interrupted = False
    try:
        # Inside the try: a Ctrl-C while the command modules are still importing is an
        # interruption like any other (130, one line), not a traceback.
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    except DaemonkitError as err:
        if not ctrl_c.seen:  # else the same Ctrl-C, seen as a peer it killed: not the story
            print(f"daemonkit: {err}", file=sys.stderr)
            return err.exit_code
        interrupted = True
    except KeyboardInterrupt:
        interrupted = True  # cleanup ran in the finally blocks on the way up
    except BrokenPipeError:
        # Output piped into a reader that went away (e.g. `daemonkit channels | head`).
        return 0
    if ctrl_c.seen:
        why = "" if ctrl_c.signum == signal.SIGINT else f" ({ctrl_c.name})"
        print(f"daemonkit: interrupted{why}", file=sys.stderr)
        return ctrl_c.exit_code
    if interrupted:  # a KeyboardInterrupt raised by hand, not by a signal
        print("daemonkit: interrupted", file=sys.stderr)
        return INTERRUPTED
    return code


# -- Ctrl-C ---------------------------------------------------------------------------------
# A Ctrl-C that CPython swallowed (see daemonkit.interrupts) is still in the record, so main()
# ends with 130 and one line whichever way the command came back.

INTERRUPTED = 128 + signal.SIGINT
INTERRUPTED_CODES = frozenset(128 + sig for sig in INTERRUPTS)  # 130, 143, 129


def _quiet_interrupt(unraisable: sys.UnraisableHookArgs) -> None:
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        return  # recorded by record_interrupts: no "Exception ignored" traceback for a Ctrl-C
    sys.__unraisablehook__(unraisable)
