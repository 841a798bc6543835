"""C4: threads communicate cheaply, processes need the kernel (线程通信代价低，进程通信代价高).

The same messages (0 bytes to 1 MiB) make round trips thread-to-thread and process-to-process,
through daemonkit's channels and its peer driver (:mod:`daemonkit.bench.peer`), each point
repeated, median and interquartile range reported:

* between threads, no kernel object: ``th-queue`` and ``th-simplequeue`` (a queue handing
  over a reference; the receiver copies the bytes once, in user space) and ``th-condition``
  (a condition variable: a notification only, measured once, since the receiving thread
  reads the bytes where the sender left them);
* between processes, through the kernel: ``pipe``, ``unix-stream``, ``posix-mq``,
  ``posix-shm`` (shared memory plus a semaphore), ``zmq-ipc``;
* and, as a control, ``pipe`` between two threads: the kernel path without a second process.

Facts that decide the outcome:

* A thread can pass a reference: the bytes are not copied through the kernel. A process
  channel copies them (pipe and socket: into the kernel and out again), so the gap grows with
  the message size.
* CPython's global interpreter lock lets one thread run Python at a time: a thread handoff
  still costs waking the other thread (a futex system call) and handing it the lock, so for
  small messages a thread handoff is not free and may cost as much as a pipe.

A channel that is missing or cannot carry a size here is reported with its error, not skipped.

Kernel path: each channel's own (see its module); the thread channels only futex(2).
Lifetime: one channel and one peer per point, removed and reaped before the next point.

See also: pipe(7), unix(7), mq_overview(7), shm_overview(7), futex(7); ``queue`` and
``threading`` in the Python library reference.
"""

from __future__ import annotations

import os
import statistics
import time
from array import array
from typing import Any

from daemonkit.bench.peer import Peer, notify_roundtrips, payload_roundtrips
from daemonkit.channels import channel_class
from daemonkit.channels.base import NotifyEnd, PayloadEnd, PeerKind
from daemonkit.errors import DaemonkitError
from daemonkit.lessons.report import Table, Tick, Verdict, overlap, spread
from daemonkit.lessons.text import Tr, fmt_ns, fmt_size

__all__ = ["CLAIMS", "NAME", "run", "steps", "tables", "verdicts"]

NAME = "communication"
CLAIMS = ("C4",)

SIZES_FULL = (0, 64, 4096, 65536, 1 << 20)
SIZES_QUICK = (0, 4096, 1 << 20)
# (channel, peer kind, group): "thread" = no kernel object, "process" = through the kernel,
# "control" = a kernel channel between two threads.
ROUTES: tuple[tuple[str, PeerKind, str], ...] = (
    ("th-queue", "thread", "thread"),
    ("th-simplequeue", "thread", "thread"),
    ("th-condition", "thread", "thread"),
    ("pipe", "thread", "control"),
    ("pipe", "process", "process"),
    ("unix-stream", "process", "process"),
    ("posix-mq", "process", "process"),
    ("posix-shm", "process", "process"),
    ("zmq-ipc", "process", "process"),
)
CHEAPER = 1.5  # best process round trip / best thread round trip that counts as "costs more"


def _point(name: str, kind: PeerKind, size: int, reps: int, batch_s: float) -> dict[str, Any]:
    """Repeated batches of round trips of *size* bytes (or of bare notifications)."""
    with channel_class(name)(kind, size) as ch:
        peer = Peer(ch, kind, size, cpu=None)
        peer.start()
        try:
            with ch.open("client") as end, peer.watch(timeout=60):
                peer.report()  # ready
                msg = memoryview(os.urandom(size))
                rbuf = memoryview(bytearray(max(size, 1)))

                def batch(n: int) -> float:
                    samples, got = array("q", [0] * n), array("q", [0] * n)
                    peer.command(n)
                    if isinstance(end, PayloadEnd):
                        payload_roundtrips(end, msg, rbuf, samples, got)
                        if set(got) != {size} or rbuf[:size] != msg:
                            raise DaemonkitError(f"{name}: the echo did not match what was sent")
                    else:
                        assert isinstance(end, NotifyEnd)
                        notify_roundtrips(end, samples)  # no bytes move: wake-ups only
                    peer.report()
                    return float(statistics.median(samples))

                t0 = time.perf_counter()
                batch(10)  # warm up, and learn how long a round trip takes
                n = max(10, min(5000, int(batch_s / ((time.perf_counter() - t0) / 10))))
                rtt = [batch(n) for _ in range(reps)]
        finally:
            peer.stop()
    return {"rtt_ns": spread(rtt), "n": n}


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return len(ROUTES)


def run(
    quick: bool,
    tick: Tick,
    sizes: tuple[int, ...] | None = None,
    reps: int | None = None,
    batch_s: float | None = None,
) -> dict[str, Any]:
    sizes = sizes or (SIZES_QUICK if quick else SIZES_FULL)
    reps = reps or (3 if quick else 9)
    batch_s = batch_s or (0.03 if quick else 0.2)
    routes = []
    for name, kind, group in ROUTES:
        route: dict[str, Any] = {"channel": name, "peer": kind, "group": group, "points": []}
        try:
            route["payload"] = channel_class(name).payload
        except (DaemonkitError, ImportError) as exc:
            route["payload"] = None
            route["points"] = [{"size": s, "error": f"{type(exc).__name__}: {exc}"} for s in sizes]
        # A notification channel moves no bytes: it is measured once, with no size, and the
        # receiver is understood to read the sender's bytes where they are (shared memory).
        for size in sizes if route["payload"] else [0] if route["payload"] is False else []:
            point: dict[str, Any] = {"size": size}
            try:
                point.update(_point(name, kind, size, reps, batch_s))
            except (DaemonkitError, OSError, ImportError) as exc:
                # A size the kernel refuses, a setup failure: shown, not hidden.
                point["error"] = f"{type(exc).__name__}: {exc}"
            route["points"].append(point)
        routes.append(route)
        tick("step.communication")
    return {"sizes": list(sizes), "reps": reps, "routes": routes}


def best(m: dict[str, Any], group: str, size: int) -> tuple[str, dict[str, float]] | None:
    """The fastest route of *group* at *size* (by median), or None if none worked."""
    found = [
        (f"{r['channel']}", p["rtt_ns"])
        for r in m["routes"]
        if r["group"] == group and r["payload"]  # only routes that carry the bytes compete
        for p in r["points"]
        if p["size"] == size and "rtt_ns" in p
    ]
    return min(found, key=lambda x: x[1]["median"]) if found else None


def verdicts(m: dict[str, Any]) -> list[Verdict]:
    cheaper, rows = [], []
    for size in m["sizes"]:
        t, p = best(m, "thread", size), best(m, "process", size)
        if t is None or p is None:
            continue
        ratio = p[1]["median"] / t[1]["median"]
        rows.append(f"{fmt_size(size)}: {ratio:.2f} ({p[0]}/{t[0]})")
        if ratio >= CHEAPER and not overlap(p[1], t[1]):
            cheaper.append(size)
    args = {
        "ratios": "; ".join(rows) or "-",
        "cheaper": ", ".join(fmt_size(s) for s in cheaper) or "-",
        "not": ", ".join(fmt_size(s) for s in m["sizes"] if s not in cheaper) or "-",
        "threshold": CHEAPER,
    }
    label: Any
    if not rows:
        label = "inconclusive"
    elif len(cheaper) == len(m["sizes"]):
        label = "holds"
    elif cheaper:
        label = "partly holds"
    else:
        label = "does not hold"
    return [Verdict("C4", label, "verdict.communication", "threshold.communication", args)]


def tables(m: dict[str, Any], tr: Tr) -> list[Table]:
    rows, errors = [], []
    for r in m["routes"]:
        cells = [r["channel"], tr("cm.group." + r["group"])]
        by_size = {p["size"]: p for p in r["points"]}
        for size in m["sizes"]:
            p = by_size.get(size)
            if p is None:
                cells.append(tr("cm.no_payload"))
            elif "rtt_ns" in p:
                s = p["rtt_ns"]
                cells.append(f"{fmt_ns(s['median'])} [{fmt_ns(s['q1'])}–{fmt_ns(s['q3'])}]")
            else:
                cells.append(tr("unavailable"))
                errors.append([r["channel"], fmt_size(size), p["error"]])
        rows.append(cells)
    cols = ["cm.col.channel", "cm.col.between", *(f"={fmt_size(s)}" for s in m["sizes"])]
    out = [Table("cm.title", cols, rows)]
    if errors:
        out.append(Table("cm.errors", ("cm.col.channel", "cm.col.size", "cm.col.error"), errors))
    return out
