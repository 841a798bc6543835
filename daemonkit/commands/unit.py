"""``daemonkit unit notify|forking|init|logrotate [--runtime-dir DIR]``: print a service file.

Prints one of the files shipped in the package (:mod:`daemonkit.service.unitfiles`) with this
installation's ``daemonkit`` script and the chosen runtime directory filled in, ready to be
redirected into ``/etc/systemd/system/``, ``/etc/init.d/`` or ``/etc/logrotate.d/``. ``--shipped``
prints the file exactly as shipped (it names ``/usr/local/bin/daemonkit``).

*Kernel path*: none; reads package data and writes stdout. *Lifetime*: nothing is made.
*See also*: systemd.service(5), systemd-analyze(1) (``verify``), logrotate(8).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``daemonkit unit``."""
    from daemonkit.service.unitfiles import KINDS

    p = sub.add_parser(
        "unit",
        help="print a systemd unit, the init script or the logrotate snippet, filled in",
        description="Print a service file shipped with daemonkit, with the installed daemonkit "
        "script and the runtime directory filled in: notify (Type=notify, daemonkit run), "
        "forking (Type=forking, daemonkit start), init (LSB init script), logrotate.",
    )
    p.add_argument("kind", choices=list(KINDS), help="which file")
    p.add_argument(
        "--runtime-dir",
        metavar="DIR",
        help="the daemon's runtime directory; for a unit, under /run "
        "(default: /run/daemonkit, /run/daemonkit-forking for forking)",
    )
    p.add_argument("--shipped", action="store_true", help="print the file unchanged, as shipped")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from daemonkit.errors import UsageError
    from daemonkit.service.unitfiles import render, shipped

    if args.shipped:
        if args.runtime_dir is not None:
            raise UsageError("unit: --shipped prints the file unchanged; drop --runtime-dir")
        print(shipped(args.kind), end="")
    else:
        print(render(args.kind, args.runtime_dir), end="")
    return 0
