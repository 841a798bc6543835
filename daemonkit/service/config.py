"""The demo daemon's configuration: a small TOML file, read at start and again on SIGHUP.

Example (every key optional)::

    name = "demo"          # shown by `status` and in systemd's STATUS= line
    idle_timeout = 30.0    # seconds a control client may stay silent before it is dropped
    init_delay = 0.0       # seconds initialization deliberately takes (shows --timeout at work)
    endpoints = ["unix-stream", "fifo"]  # default: every registered endpoint

A file that cannot be read or parsed, an unknown key or a wrong type is a
:class:`~daemonkit.errors.ConfigError` with a one-line message: at start it fails the
initialization (and ``daemonkit start`` prints it); on reload the daemon keeps the old
configuration and logs the error.

Kernel path: one open(2)/read(2) of the file; nothing is kept open.

Lifetime: the parsed values live in the daemon until the next successful reload.

The endpoint names are those of :data:`daemonkit.service.endpoints.REGISTRY`.

See also: the TOML specification (toml.io), Python's tomllib.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from daemonkit.errors import ConfigError
from daemonkit.service.endpoints import ENDPOINT_NAMES

__all__ = ["Config", "load_config"]


@dataclass(frozen=True)
class Config:
    name: str = "daemonkit-demo"
    idle_timeout: float = 30.0
    init_delay: float = 0.0
    endpoints: tuple[str, ...] = ENDPOINT_NAMES


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "idle_timeout": (int, float),
    "init_delay": (int, float),
    "endpoints": (list,),
}


def load_config(path: Path | None) -> Config:
    """Parse *path* (None: the defaults). Raises ConfigError with a one-line reason."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data: dict[str, Any] = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: {exc}") from exc
    known = {f.name for f in fields(Config)}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"config {path}: unknown key {key!r}")
        if isinstance(value, bool) or not isinstance(value, _TYPES[key]):
            raise ConfigError(f"config {path}: {key} has the wrong type ({type(value).__name__})")
    for key in ("idle_timeout", "init_delay"):
        if key in data and not 0 <= data[key] <= 3600:
            raise ConfigError(f"config {path}: {key} must be between 0 and 3600 seconds")
    if "endpoints" in data:
        unknown = [e for e in data["endpoints"] if e not in ENDPOINT_NAMES]
        if unknown:
            raise ConfigError(f"config {path}: unknown endpoint {unknown[0]!r}")
        data["endpoints"] = tuple(data["endpoints"])
    return Config(**data)
