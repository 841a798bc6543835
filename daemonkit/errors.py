"""The exception tree of daemonkit.

Library code raises these (chained with ``from`` to the ``OSError`` that caused them, so errno
and filename survive); only :mod:`daemonkit.cli` turns them into ``daemonkit: <what>: <why>``
and an exit code. Each class carries the exit code the CLI uses for it; the daemon-control codes
follow the LSB init-script convention (status: 1 dead with pidfile, 3 not running, 4 unknown;
other actions: 1 generic, 2 usage, 7 not running).
"""

from __future__ import annotations

__all__ = [
    "AlreadyRunningError",
    "ChannelError",
    "ConfigError",
    "DaemonStartError",
    "DaemonkitError",
    "DocumentError",
    "NoSuchProcessError",
    "NotRunningError",
    "NotSupportedHereError",
    "PeerDiedError",
    "PidfileError",
    "RuntimeDirError",
    "SizeNotSupportedError",
    "UsageError",
]


class DaemonkitError(Exception):
    """Base of every error daemonkit reports. ``str(err)`` is the one-line message."""

    exit_code: int = 1


class UsageError(DaemonkitError):
    """Wrong command-line input (unknown channel, bad size, negative count)."""

    exit_code = 2


class DocumentError(DaemonkitError):
    """A results document that cannot be read, is not JSON, or does not match its schema."""

    exit_code = 2  # bad input, like a usage error


class ConfigError(DaemonkitError):
    """A configuration file or option that cannot be used."""

    exit_code = 6  # LSB: program is not configured


class RuntimeDirError(DaemonkitError):
    """The runtime directory is missing, not ours, not private, or not writable."""

    exit_code = 4  # LSB: user had insufficient privilege


class PidfileError(DaemonkitError):
    """The pidfile cannot be opened, locked, read or written."""


class AlreadyRunningError(PidfileError):
    """The pidfile is locked by a live daemon."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"already running{who}")


class DaemonStartError(DaemonkitError):
    """The daemon could not be started, or reported a failed initialization."""


class NotRunningError(DaemonkitError):
    """The daemon is not running (LSB code 7 for actions other than status)."""

    exit_code = 7


class NoSuchProcessError(DaemonkitError):
    """The process to look at does not exist (or has exited): LSB status "not running"."""

    exit_code = 3


class ChannelError(DaemonkitError):
    """An IPC channel failed (setup, transfer, or an echo that did not match)."""

    def __init__(self, channel: str, message: str) -> None:
        self.channel = channel
        super().__init__(f"{channel}: {message}")


class NotSupportedHereError(ChannelError):
    """The channel cannot run on this machine or in this placement: its case is skipped."""


class SizeNotSupportedError(NotSupportedHereError):
    """The channel cannot carry a message of this size on this machine."""


class PeerDiedError(ChannelError):
    """The peer process or thread ended before the run was over."""
