"""Run every traced case and put the figures into one ``daemonkit.trace/1`` document.

The document (results are data; the terminal views and the report's plot read it)::

    {"schema": "daemonkit.trace/1", "created": ..., "command": [...], "options": {...},
     "machine": {...},  # daemonkit.machine.describe(), plus the placement
     "recorder": {"tool": "perf", "version": ..., "events": [...]},
     "cases": [{channel, peer, cpu, size, round_trips, latency_ns, switches_per_round_trip,
                wakeups, run_slices, cpu_time, futex_sleeps_per_round_trip, timeline, ...}
               or {channel, peer, cpu, "error"|"skipped": why}],
     "findings": [{case, condition, holds, value, threshold, text}], "reading": "..."}

A case that fails (its channel, its peer) is recorded with its error and the next one runs;
a recorder that cannot record at all (:class:`~daemonkit.trace.perf.TraceUnavailableError`)
and Ctrl-C end the run.

*Kernel path*: see :mod:`daemonkit.trace.capture`. *Lifetime*: each case's objects live as
long as the case. *See also*: :mod:`daemonkit.trace.analysis`, :mod:`daemonkit.trace.reading`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemonkit import machine
from daemonkit.channels import channel_class
from daemonkit.channels.base import PeerKind
from daemonkit.errors import DaemonkitError
from daemonkit.machine import CpuMode
from daemonkit.trace.analysis import analyse
from daemonkit.trace.capture import capture
from daemonkit.trace.perf import EVENTS, FUTEX_EVENTS, TraceUnavailableError
from daemonkit.trace.reading import read

__all__ = ["SCHEMA", "run", "write_json"]

SCHEMA = "daemonkit.trace/1"


def _perf_version() -> str | None:
    try:
        done = subprocess.run(["perf", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def run(
    channels: Sequence[str],
    peers: Sequence[PeerKind],
    cpu: CpuMode,
    size: int,
    round_trips: int,
    warmup: int,
    command: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Trace each (channel, peer) case in turn; the whole document."""
    place = machine.placement(cpu)
    cases: list[dict[str, Any]] = []
    for name in channels:
        cls = channel_class(name)
        for kind in peers:
            this_size = size if cls.payload else 0  # a notification carries no bytes
            base: dict[str, Any] = {"channel": name, "peer": kind, "cpu": cpu, "size": this_size}
            if kind not in cls.peer_kinds:
                cases.append({**base, "skipped": f"{name} runs between threads only"})
                continue
            limit = cls.max_message_size() if cls.payload else None
            if limit is not None and size > limit:
                why = f"{size} bytes exceed this channel's limit here ({limit} bytes)"
                cases.append({**base, "skipped": why})
                continue
            if progress is not None:
                progress(f"{name} {kind} peer, cpu {cpu}")
            try:
                cases.append(analyse(capture(cls, kind, this_size, place, round_trips, warmup)))
            except TraceUnavailableError:
                raise
            except (DaemonkitError, OSError) as exc:
                cases.append({**base, "error": str(exc)})
            except Exception as exc:  # a bug in a channel module or here: that case's error
                cases.append({**base, "error": f"{type(exc).__name__}: {exc}"})
    measured = [c for c in cases if "switches_per_round_trip" in c]
    findings, paragraph = read(measured)
    here = machine.describe()
    here["pinning"] = place.as_dict()
    return {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(command),
        "options": {
            "channels": list(channels),
            "peer": list(peers),
            "cpu": cpu,
            "size": size,
            "round_trips": round_trips,
            "warmup": warmup,
        },
        "machine": here,
        "recorder": {
            "tool": "perf",
            "version": _perf_version(),
            "events": [*EVENTS, *FUTEX_EVENTS],
            "clock": "CLOCK_MONOTONIC",
        },
        "cases": cases,
        "findings": findings,
        "reading": paragraph,
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Write the document (to a temporary name, then rename: never half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DaemonkitError(f"{err.filename or path}: cannot write: {err.strerror}") from err
