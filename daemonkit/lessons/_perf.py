"""Hardware event counts from ``perf stat``, attached to running processes, where they exist.

Kernel path: perf_event_open(2) (through the ``perf`` tool) opens one counter per event per
thread of the named processes; the PMU counts while they run and ``perf`` prints the totals
when it gets SIGINT. On many virtual machines the hypervisor exposes no PMU: the events open
but report ``<not supported>``, and that is said plainly instead of printing a zero.

Lifetime: the ``perf`` process is ours; it is stopped (SIGINT, then reaped) when the block
ends, on every path.

See also: perf-stat(1), perf_event_open(2), ``/proc/sys/kernel/perf_event_paranoid``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence

__all__ = ["attach", "probe"]


def _parse(stderr: str, events: Sequence[str]) -> tuple[dict[str, int], str | None]:
    """Counts from ``perf stat -x,`` output; the reason when any event was not counted."""
    counts: dict[str, int] = {}
    for line in stderr.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or fields[2] not in events:
            continue
        value = fields[0]
        if value.startswith("<"):  # <not supported> / <not counted>
            return {}, f"{fields[2]}: {value}"
        counts[fields[2]] = int(float(value))
    missing = [e for e in events if e not in counts]
    if missing:
        return {}, f"perf printed no count for {', '.join(missing)}"
    return counts, None


def probe(events: Sequence[str]) -> str | None:
    """None when ``perf stat -e EVENTS`` counts on this machine, else why it does not."""
    if shutil.which("perf") is None:
        return "perf is not installed"
    try:
        done = subprocess.run(
            ["perf", "stat", "-x,", "-e", ",".join(events), "true"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"perf stat failed: {exc}"
    _, reason = _parse(done.stderr, events)
    if reason is None and done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "perf failed"
    return reason


@contextlib.contextmanager
def attach(pids: Sequence[int], events: Sequence[str]) -> Iterator[dict[str, int]]:
    """Count *events* in *pids* (every thread of each) while inside; the dict fills at exit."""
    counts: dict[str, int] = {}
    proc = subprocess.Popen(
        ["perf", "stat", "-x,", "-e", ",".join(events), "-p", ",".join(map(str, pids))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.2)  # perf opens its counters after it starts; give it that time
        yield counts
    finally:
        proc.send_signal(signal.SIGINT)  # perf prints the totals and exits
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        got, _ = _parse(err, events)
        counts.update(got)
