"""Options shared by several commands: the value types of ``bench`` (and of ``serve``/
``throughput``), and ``--report DIR`` for the commands that measure.

Each turns one option's text into a value or raises ``argparse.ArgumentTypeError``, which the
CLI prints as one line with exit status 2 (a usage error): ``--sizes 12Q``, an unknown channel
or a negative count never reaches the runner.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from daemonkit.channels import REGISTRY, channel_names
from daemonkit.errors import DaemonkitError

__all__ = [
    "MAX_SIZE",
    "add_placement_options",
    "add_report_option",
    "checked",
    "parse_channels",
    "parse_count",
    "parse_seconds",
    "parse_sizes",
    "parse_warmup",
    "prepare_out_dir",
    "write_output",
]

MAX_SIZE = 64 << 20  # 64 MiB: each end allocates a buffer this large
_SIZE_RE = re.compile(r"^(\d+)([KkMm]?)$")
_SIZE_GUESS_RE = re.compile(r"^(\d+)\s*([KkMm])(?:i?[Bb])$")
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20}

N = TypeVar("N", int, float)


def checked(
    convert: Callable[[str], N], ok: Callable[[N], bool], bad: str, out_of_range: str = ""
) -> Callable[[str], N]:
    """An option type: *convert* the text, then check the value with *ok*.

    *bad* (text that does not convert) and *out_of_range* (a value *ok* refuses; *bad* again
    when empty) are messages with ``{text!r}`` where the option's text goes.
    """

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(bad.format(text=text)) from None
        if not ok(value):  # NaN fails every comparison: never in range
            raise argparse.ArgumentTypeError((out_of_range or bad).format(text=text))
        return value

    return parse


def nearest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'pipe'?)`` for the valid name closest to a mistyped one, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _size_guess(text: str) -> str:
    """``64KB``, ``4 kib``, ``1MiB`` -> `` (did you mean '64K'?)``."""
    m = _SIZE_GUESS_RE.match(text)
    return f" (did you mean '{m.group(1)}{m.group(2).upper()}'?)" if m else ""


def parse_sizes(text: str) -> list[int]:
    """``0,64,4K,1M`` -> byte counts (K = 1024, M = 1024**2), sorted, without repeats."""
    sizes = set()
    for part in text.split(","):
        m = _SIZE_RE.match(part.strip())
        if not m:
            raise argparse.ArgumentTypeError(
                f"bad size {part.strip()!r}{_size_guess(part.strip())}: give bytes with an "
                "optional K or M, e.g. 0,64,4K,1M"
            )
        size = int(m.group(1)) * _SCALE[m.group(2).lower()]
        if size > MAX_SIZE:
            raise argparse.ArgumentTypeError(f"size {part.strip()!r} is above the 64M maximum")
        sizes.add(size)
    return sorted(sizes)


def parse_channels(text: str) -> list[str]:
    """``pipe,tcp`` -> names checked against the registry; ``all`` -> every channel."""
    if text.strip() == "all":
        return channel_names()
    names: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        if name not in REGISTRY:
            raise argparse.ArgumentTypeError(
                f"unknown channel {name!r}{nearest(name, REGISTRY)} (see 'daemonkit channels')"
            )
        if name not in names:
            names.append(name)
    return names


def parse_count(text: str) -> int:
    """A whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def parse_warmup(text: str) -> int:
    """A whole number >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 0")
    return int(text)


parse_seconds = checked(  # seconds above 0 and below a day
    float, lambda s: 0 < s < 86400, "{text!r} is not a duration in seconds above 0"
)


def add_placement_options(parser: argparse.ArgumentParser) -> None:
    """``--peer`` (where the peer lives) and ``--cpu`` (where the two ends run), as the
    commands that run a local ping-pong take them."""
    parser.add_argument(
        "--peer",
        choices=("process", "thread", "both"),
        default="both",
        help="forked peer process, peer thread, or both (default)",
    )
    parser.add_argument(
        "--cpu",
        choices=("same", "split", "none"),
        default="same",
        help="both ends on one CPU (default), on two CPUs, or unpinned",
    )


def add_output_option(parser: argparse.ArgumentParser, flag: str, what: str) -> None:
    """``--json PATH`` / ``--csv PATH``: a file, or ``-`` for standard output."""
    parser.add_argument(flag, type=Path, metavar="PATH", help=f"{what} ('-': standard output)")


def is_stdout(path: Path | None) -> bool:
    """Whether an output option names standard output (``-``)."""
    return path is not None and str(path) == "-"


def write_output(path: Path, text: str) -> None:
    """Write *text* to *path*, or to standard output for ``-``."""
    if is_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # e.g. a directory that root may "write" but the kernel refuses
        raise DaemonkitError(f"cannot write {path}: {exc.strerror}") from exc


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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DaemonkitError(f"{out}: cannot create: {err.strerror}") from err
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise DaemonkitError(f"{out}: not a writable directory")
    return out
