"""Is this run to be trusted? One warning line when it looks unreliable, as pyperf warns.

Three conditions, each computed from the results document (never assumed), each with its
threshold in the text it prints:

* **Load**: the 1-minute load average at the start of the run above the number of CPUs: other
  tasks wanted more CPU time than there was, and they took some of it from the two ends.
* **Spread**: the medians of a case's timed batches (``batch_p50_ns``; in stream mode each
  batch's rate) differ by more than 10 % of their median: the conditions changed while the
  case ran.
* **Placement**: an end was found on a CPU other than the one ``--cpu`` asked for (``ran_on``,
  read back from the kernel after each batch with sched_getcpu(3) or ``/proc/PID/stat``
  field 39): the pinning did not hold, e.g. a cpuset changed under the run. The daemon and a
  remote server are not pinned by the run, so only the client is judged there.

The machine facts that explain a noisy run (governor, isolated CPUs, virtualization) are in the
document's ``machine.facts``; this module only judges.

*Kernel path*: none. *Lifetime*: none.
*See also*: pyperf's ``system tune`` and its "unstable" warnings; cpuset(7), proc(5).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from daemonkit.bench.results import Result, Run

__all__ = ["SPREAD_LIMIT", "Findings", "assess", "warning_line"]

SPREAD_LIMIT = 0.10  # batch medians may differ by this fraction of their median


@dataclass(frozen=True)
class Findings:
    """What made the run look unreliable; empty lists and None when nothing did."""

    load: float | None  # the 1-minute load, when above the CPU count
    cpus: int
    spread: list[tuple[Result, float]]  # cases whose batches differ by more than the limit
    misplaced: list[tuple[Result, str, list[int]]]  # (case, end, CPUs it was found on)

    @property
    def unreliable(self) -> bool:
        return self.load is not None or bool(self.spread) or bool(self.misplaced)


def batch_spread(r: Result) -> float | None:
    """(max - min) / median of the case's per-batch figures, or None with fewer than two."""
    values = r.batch_p50_ns if r.mode != "stream" else r.batch_messages_per_s
    if not values or len(values) < 2:
        return None
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else None


def assess(run: Run) -> Findings:
    """Judge *run* by the three conditions of the module docstring."""
    m = run.machine
    cpus = int(m.get("cpu_count") or 1)
    load_avg = m.get("load_avg") or [0.0]
    load = float(load_avg[0]) if float(load_avg[0]) > cpus else None
    spread = []
    for r in run.results:
        s = batch_spread(r)
        if s is not None and s > SPREAD_LIMIT:
            spread.append((r, s))
    pin = m.get("pinning", {})
    asked = {"client": pin.get("requested_client"), "peer": pin.get("requested_peer")}
    misplaced = []
    for r in run.results:
        for end, cpu in asked.items():
            if end == "peer" and r.peer in ("daemon", "remote"):
                continue  # not pinned by this run: nothing was asked of it
            seen = (r.ran_on or {}).get(end) or []
            if cpu is not None and any(c != cpu for c in seen):
                misplaced.append((r, end, seen))
    return Findings(load, cpus, spread, misplaced)


def warning_line(f: Findings) -> str | None:
    """One line naming every reason the run looks unreliable, or None."""
    if not f.unreliable:
        return None
    why = []
    if f.load is not None:
        why.append(f"load {f.load:.2f} above the {f.cpus} CPUs")
    if f.spread:
        worst, s = max(f.spread, key=lambda x: x[1])
        why.append(
            f"batch medians differ by more than {SPREAD_LIMIT:.0%} in {len(f.spread)} case(s) "
            f"(worst {worst.channel}/{worst.peer} {worst.size} B: {s:.0%})"
        )
    if f.misplaced:
        r, end, seen = f.misplaced[0]
        why.append(
            f"{len(f.misplaced)} end(s) ran on other CPUs than asked "
            f"(first: {r.channel}/{r.peer} {end} on CPUs {seen})"
        )
    return "warning: this run looks unreliable: " + "; ".join(why)
