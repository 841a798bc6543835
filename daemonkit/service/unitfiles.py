"""The service files shipped with the package, filled in for the installation that runs this.

``daemonkit/service/units/`` holds the two systemd units (``Type=notify`` and
``Type=forking``), the LSB init-style script and the logrotate snippet; ``services/`` at the
top of the source tree links to the same files for admins working from a checkout. As shipped,
they name the documented install location ``/usr/local/bin/daemonkit`` and the runtime
directories ``/run/daemonkit`` and ``/run/daemonkit-forking``. :func:`render` rewrites those
lines for this installation: the ``daemonkit`` script that pip installed beside the running
interpreter (its ``#!`` line names that interpreter, so the unit runs this very environment),
and a runtime directory of the caller's choice. Nothing else in a file changes, so what the
test suite verifies in the shipped files (``systemd-analyze verify``, a real systemd in a
container) holds for the printed ones.

Facts about the runtime directory of a unit: systemd creates it before ``ExecStart=`` and
removes it after stop (``RuntimeDirectory=``, a path relative to ``/run``), so a unit's
``--runtime-dir`` must lie under ``/run``. The forking unit's ``PIDFile=`` is the daemon's
default pidfile in that directory.

*Lifetime*: the shipped files are read-only package data, read with :mod:`importlib.resources`.
*See also*: systemd.service(5), systemd.exec(5) (``RuntimeDirectory=``), logrotate(8),
daemonkit/commands/unit.py (``daemonkit unit``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from daemonkit import __version__
from daemonkit.errors import DaemonkitError, UsageError
from daemonkit.service.control import PIDFILE_NAME

__all__ = ["KINDS", "UnitFile", "installed_script", "render", "shipped"]

SHIPPED_SCRIPT = "/usr/local/bin/daemonkit"
SYSTEMD_RUN = PurePosixPath("/run")
# Characters a path may hold to be written unquoted into a unit and a shell script: no
# whitespace, no quotes, no '$' or '\' (shell), no '%' (a systemd specifier).
SAFE_PATH = re.compile(r"/[A-Za-z0-9._+/-]*")


@dataclass(frozen=True)
class UnitFile:
    """One shipped file: its name in the package, and the runtime directory it names."""

    kind: str
    filename: str
    runtime_dir: str
    systemd: bool  # a unit: its runtime directory is made by systemd, under /run


KINDS: dict[str, UnitFile] = {
    "notify": UnitFile("notify", "daemonkit-demo.service", "/run/daemonkit", True),
    "forking": UnitFile(
        "forking", "daemonkit-demo-forking.service", "/run/daemonkit-forking", True
    ),
    "init": UnitFile("init", "daemonkit-init", "/run/daemonkit", False),
    "logrotate": UnitFile("logrotate", "daemonkit.logrotate", "/run/daemonkit", False),
}


def shipped(kind: str) -> str:
    """The file as shipped in the package, unchanged."""
    return (
        resources.files("daemonkit.service")
        .joinpath("units", KINDS[kind].filename)
        .read_text(encoding="utf-8")
    )


def installed_script() -> Path:
    """The ``daemonkit`` console script pip installed for the running interpreter."""
    import sysconfig  # here, not on top: every command loads this module (for `unit` choices)

    script = Path(sysconfig.get_path("scripts")) / "daemonkit"
    if not script.is_file():
        raise DaemonkitError(
            f"no daemonkit script in {script.parent}: install the package with pip first"
        )
    return script


def render(kind: str, runtime_dir: str | None = None, script: Path | None = None) -> str:
    """*kind*'s file with this installation's script and *runtime_dir* filled in.

    :class:`UsageError` for a runtime directory a unit cannot use (not under ``/run``, or not a
    plain absolute path); :class:`DaemonkitError` when no installed script is found.
    """
    unit = KINDS[kind]
    rdir = _checked_runtime_dir(unit, runtime_dir or unit.runtime_dir)
    exe = str(script or installed_script())
    if not SAFE_PATH.fullmatch(exe):
        raise DaemonkitError(f"the daemonkit script's path {exe!r} cannot be written unquoted")
    text = shipped(kind)
    if unit.kind == "notify":
        text = _set_line(text, "ExecStart=", f"ExecStart={exe} run --runtime-dir {rdir}")
    elif unit.kind == "forking":
        old = _line(text, "ExecStart=")
        tail = old.split("--runtime-dir ", 1)[1].split(" ", 1)[1]  # the options after it
        text = _set_line(text, "ExecStart=", f"ExecStart={exe} start --runtime-dir {rdir} {tail}")
        text = _set_line(text, "PIDFile=", f"PIDFile={rdir}/{PIDFILE_NAME}")
    elif unit.kind == "init":
        text = _set_line(text, "DAEMONKIT=", f'DAEMONKIT="${{DAEMONKIT:-{exe}}}"')
        text = _set_line(text, "RUNTIME_DIR=", f'RUNTIME_DIR="${{RUNTIME_DIR:-{rdir}}}"')
    elif runtime_dir is not None:  # logrotate: signal only the daemon of that directory
        text = _set_line(
            text, "        for pidfile in ", f"        for pidfile in {rdir}/{PIDFILE_NAME}; do"
        )
    if unit.systemd:
        relative = PurePosixPath(rdir).relative_to(SYSTEMD_RUN)
        text = _set_line(text, "RuntimeDirectory=", f"RuntimeDirectory={relative}")
    return _with_header(text, kind, exe)


def _checked_runtime_dir(unit: UnitFile, rdir: str) -> str:
    path = PurePosixPath(rdir)
    if not SAFE_PATH.fullmatch(rdir) or str(path) != rdir or ".." in path.parts:
        raise UsageError(
            f"--runtime-dir {rdir!r}: give a plain absolute path (letters, digits, ._+-/)"
        )
    if unit.systemd and (path == SYSTEMD_RUN or not path.is_relative_to(SYSTEMD_RUN)):
        raise UsageError(
            f"--runtime-dir {rdir}: a unit's runtime directory must be under /run "
            "(systemd makes it: RuntimeDirectory=)"
        )
    return rdir


def _line(text: str, prefix: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(prefix)]
    if len(found) != 1:  # the shipped file and this code disagree: a packaging bug
        raise AssertionError(f"expected one line starting {prefix!r}, found {len(found)}")
    return found[0]


def _set_line(text: str, prefix: str, new: str) -> str:
    old = _line(text, prefix)
    return text.replace(old + "\n", new + "\n", 1)


def _with_header(text: str, kind: str, exe: str) -> str:
    header = (
        f"# Written by `daemonkit unit {kind}` (daemonkit {__version__}) for the interpreter\n"
        f"# {sys.executable}, whose daemonkit script is {exe}.\n"
    )
    if text.startswith("#!"):  # a script: its #! line stays first
        shebang, _, rest = text.partition("\n")
        return f"{shebang}\n{header}{rest}"
    return header + text
