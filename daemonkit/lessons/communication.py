"""C4: threads communicate cheaply, processes need the kernel (线程通信代价低，进程通信代价高).

The same messages (0 bytes to 1 MiB) make round trips thread-to-thread and process-to-process,
through daemonkit's channels and its peer driver (:mod:`daemonkit.bench.peer`), each point
repeated, median and interquartile range reported:

* between threads, no kernel object: ``th-queue`` and ``th-simplequeue`` (a queue handing
  over a reference; the receiver copies the bytes once, in user space) and ``th-condition``
  (a condition variable: a notification only, measured once, since the receiving thread
  reads the bytes where the sender left them);
* between processes, the bytes through the kernel: ``pipe``, ``unix-stream``, ``posix-mq``,
  ``zmq-ipc``;
* between processes, the bytes through shared memory and only the wake-up through the kernel
  (a semaphore): ``posix-shm``;
* and, as a control, ``pipe`` between two threads: the kernel path without a second process.

Both ends are pinned to one CPU (as in the ctx-switch lesson): unpinned, the scheduler puts
the two ends on one CPU in some runs and on two in others, and the round trip changes more
with that placement than with threads versus processes. The placement is shown as the
confounder it is: the best thread handoff and the pipe between processes also run split
across two CPUs.

The claim is decided (:mod:`daemonkit.lessons.verdict`) at the smallest and the largest
message, on best process route / best thread handoff with its bootstrap interval: >= 1.5x
holds ("threads communicate cheaply"), 1.1x-1.5x partly, below 1.1x does not hold; the two
points folded with :func:`~daemonkit.lessons.verdict.combine`.

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
from collections.abc import Mapping
from typing import Any, TypedDict

from daemonkit.bench.peer import Peer, notify_roundtrips, payload_roundtrips
from daemonkit.channels import channel_class
from daemonkit.channels.base import NotifyEnd, PayloadEnd, PeerKind
from daemonkit.errors import DaemonkitError
from daemonkit.lessons._ring import pinned
from daemonkit.lessons.report import Table, Tick, spread
from daemonkit.lessons.text import Tr, fmt_ns, fmt_size
from daemonkit.lessons.verdict import Bands, Decision, Label, Verdict, combine, ratio_of_medians
from daemonkit.machine import placement

__all__ = ["CLAIMS", "NAME", "Measurements", "explain", "run", "steps", "tables", "verdicts"]

NAME = "communication"
CLAIMS = ("C4",)

SIZES_FULL = (0, 64, 4096, 65536, 1 << 20)
SIZES_QUICK = (0, 4096, 1 << 20)
# (channel, peer kind, group): "thread" = no kernel object, "process" = bytes through the
# kernel, "shm" = bytes through shared memory and a semaphore for the wake-up, "control" = a
# kernel channel between two threads.
ROUTES: tuple[tuple[str, PeerKind, str], ...] = (
    ("th-queue", "thread", "thread"),
    ("th-simplequeue", "thread", "thread"),
    ("th-condition", "thread", "thread"),
    ("pipe", "thread", "control"),
    ("pipe", "process", "process"),
    ("unix-stream", "process", "process"),
    ("posix-mq", "process", "process"),
    ("posix-shm", "process", "shm"),
    ("zmq-ipc", "process", "process"),
)
CHEAPER = Bands(partly=1.1, holds=1.5)  # best process / best thread round trip
PROCESS_GROUPS = ("process", "shm")  # every route between two processes competes
# The confounder: the same handoffs with the two ends on two CPUs.
SPLIT_ROUTES: tuple[tuple[str, PeerKind], ...] = (("th-queue", "thread"), ("pipe", "process"))


class Measurements(TypedDict):
    """What ``run`` hands back (JSON data). A route: ``channel``, ``peer``, ``group``,
    ``payload`` and ``points`` (per size, ``rtt_ns`` as a
    :class:`~daemonkit.lessons.report.Spread` and ``n``, or the ``error``). ``split``: the same
    for the confounder, the ends on two CPUs (or why it could not run)."""

    sizes: list[int]
    reps: int
    cpu: int | None
    routes: list[dict[str, Any]]
    split: list[dict[str, Any]]


def _point(
    name: str,
    kind: PeerKind,
    size: int,
    reps: int,
    batch_s: float,
    cpus: tuple[int | None, int | None],
) -> dict[str, Any]:
    """Repeated batches of round trips of *size* bytes (or of bare notifications)."""
    with pinned(cpus[0]), channel_class(name)(kind, size) as ch:
        peer = Peer(ch, kind, size, cpu=cpus[1])
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
    return len(ROUTES) + 1


def run(
    quick: bool,
    tick: Tick,
    sizes: tuple[int, ...] | None = None,
    reps: int | None = None,
    batch_s: float | None = None,
) -> Measurements:
    sizes = sizes or (SIZES_QUICK if quick else SIZES_FULL)
    reps = reps or (3 if quick else 9)
    batch_s = batch_s or (0.03 if quick else 0.2)
    same = placement("same")
    cpus = (same.client_cpu, same.peer_cpu)
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
                point.update(_point(name, kind, size, reps, batch_s, cpus))
            except (DaemonkitError, OSError, ImportError) as exc:
                # A size the kernel refuses, a setup failure: shown, not hidden.
                point["error"] = f"{type(exc).__name__}: {exc}"
            route["points"].append(point)
        routes.append(route)
        tick("step.communication")
    split = _split(sizes, reps, batch_s)
    tick("step.communication.split")
    return {
        "sizes": list(sizes),
        "reps": reps,
        "cpu": same.client_cpu,
        "routes": routes,
        "split": split,
    }


def _split(sizes: tuple[int, ...], reps: int, batch_s: float) -> list[dict[str, Any]]:
    """The confounder: a thread and a process handoff with the ends on two CPUs."""
    where = placement("split")
    out: list[dict[str, Any]] = []
    if where.note:  # one CPU allowed: nothing to compare
        return [{"unavailable": where.note}]
    for name, kind in SPLIT_ROUTES:
        for size in (sizes[0], sizes[-1]):
            point: dict[str, Any] = {"channel": name, "peer": kind, "size": size}
            try:
                point.update(
                    _point(name, kind, size, reps, batch_s, (where.client_cpu, where.peer_cpu))
                )
            except (DaemonkitError, OSError, ImportError) as exc:
                point["error"] = f"{type(exc).__name__}: {exc}"
            out.append(point)
    return out


def best(
    m: Measurements, groups: tuple[str, ...], size: int
) -> tuple[str, Mapping[str, Any]] | None:
    """The fastest route of *groups* at *size* (by median), or None if none worked."""
    found = [
        (f"{r['channel']}", p["rtt_ns"])
        for r in m["routes"]
        if r["group"] in groups and r["payload"]  # only routes that carry the bytes compete
        for p in r["points"]
        if p["size"] == size and "rtt_ns" in p
    ]
    return min(found, key=lambda x: x[1]["median"]) if found else None


def decisions(m: Measurements) -> dict[int, tuple[Decision, str, str]]:
    """Per deciding size (smallest, largest): the decision and the two routes compared."""
    out = {}
    for size in dict.fromkeys((m["sizes"][0], m["sizes"][-1])):
        t, p = best(m, ("thread",), size), best(m, PROCESS_GROUPS, size)
        if t is None or p is None:
            continue
        ci = ratio_of_medians([(p[1]["samples"], t[1]["samples"])])
        out[size] = (Decision("c4", ci, CHEAPER, (fmt_size(size),)), p[0], t[0])
    return out


def verdicts(m: Measurements, facts: Mapping[str, Any]) -> list[Verdict]:
    ds = decisions(m)
    ratios = []
    for size in m["sizes"]:
        t, p = best(m, ("thread",), size), best(m, PROCESS_GROUPS, size)
        if t and p:
            ratios.append([fmt_size(size), f"{p[1]['median'] / t[1]['median']:.2f} {p[0]}/{t[0]}"])
    label: Label = combine(d.label for d, _, _ in ds.values()) if ds else "inconclusive"
    figures: dict[str, Any] = {
        "ratios": ratios or ["-"],
        "small": fmt_size(m["sizes"][0]),
        "large": fmt_size(m["sizes"][-1]),
    }
    extra: list[str] = []
    split = [p for p in m.get("split", []) if "rtt_ns" in p]
    if split:
        figures["split"] = [
            [f"{p['channel']} {fmt_size(p['size'])}", fmt_ns(p["rtt_ns"]["median"])] for p in split
        ]
        extra.append("verdict.communication.split")
    why = explain(m, facts, ds)
    return [
        Verdict(
            "C4",
            label,
            "verdict.communication",
            "threshold.communication",
            figures,
            tuple(extra),
            why,
            tuple(d for d, _, _ in ds.values()),
        )
    ]


def explain(
    m: Measurements, facts: Mapping[str, Any], ds: Mapping[int, tuple[Decision, str, str]]
) -> tuple[str, ...]:
    """Why on this machine: the GIL where threads were slower, copies where they were faster."""
    why: list[str] = []
    small = ds.get(m["sizes"][0])
    large = ds.get(m["sizes"][-1])
    if small is not None and small[0].ci.hi < 1.0:
        # Threads were slower at the smallest message, beyond the interval.
        why.append("why.c4.gil" if facts.get("gil", True) else "why.c4.slower")
    if large is not None and large[0].ci.lo >= CHEAPER.partly:
        why.append("why.c4.copy")  # a thread passes a reference, a process copies the bytes
    if large is not None and large[1] == "posix-shm":
        why.append("why.c4.shm")  # the fastest process route did not copy through the kernel
    return tuple(why)


def tables(m: Measurements, tr: Tr) -> list[Table]:
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
    split_rows = [
        [
            p["channel"],
            tr("cm.group." + ("thread" if p["peer"] == "thread" else "process")),
            fmt_size(p["size"]),
            fmt_ns(p["rtt_ns"]["median"]) if "rtt_ns" in p else tr("unavailable"),
        ]
        for p in m.get("split", [])
        if "channel" in p
    ]
    if split_rows:
        scols = ("cm.col.channel", "cm.col.between", "cm.col.size", "cm.col.split")
        out.append(Table("cm.split.title", scols, split_rows))
    if errors:
        out.append(Table("cm.errors", ("cm.col.channel", "cm.col.size", "cm.col.error"), errors))
    return out


# -- this lesson's words, in both languages (the same keys; a test checks it) --------

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "claim.communication": "C4 (线程通信代价低，进程通信代价高): threads communicate cheaply "
        "through shared memory; processes must go through the kernel.",
        "method.communication": "Round trips of 0 B to 1 MiB messages, both ends pinned to one "
        "CPU: between threads (queues passing a reference; a condition variable, notification "
        "only: the bytes stay where they are) and between processes (pipe, Unix socket, POSIX "
        "message queue and ZeroMQ copy the bytes through the kernel; posix-shm keeps them in "
        "shared memory and wakes the peer with a semaphore); a pipe between threads as a "
        "control. The same handoffs split across two CPUs show the placement as a confounder.",
        "step.communication": "communication: one channel done",
        "cm.title": "Round trip by message size (median [q1–q3])",
        "cm.col.channel": "channel",
        "cm.col.between": "between",
        "cm.errors": "Points that could not be measured here",
        "cm.col.size": "size",
        "cm.no_payload": "(notification only)",
        "cm.col.error": "error",
        "cm.group.thread": "threads, no kernel object",
        "cm.group.process": "processes, bytes through the kernel",
        "cm.group.control": "threads, through the kernel",
        "verdict.communication": "Best process route / best thread handoff, both ends on one "
        "CPU: {ratios}. Decided at {small} and at {large}.",
        "threshold.communication": "'communicate cheaply' is read as the process/thread ratio of "
        "round trips at the smallest and the largest message; both alike give that label, "
        "different labels give partly holds",
        "q.c4": "best process route / best thread handoff, round trip",
        "step.communication.split": "communication: ends on two CPUs done",
        "cm.group.shm": "processes, bytes in shared memory, a semaphore to wake",
        "cm.split.title": "The confounder: the same handoffs with the ends on two CPUs (median)",
        "cm.col.split": "round trip, two CPUs",
        "verdict.communication.split": "With the ends on two CPUs: {split}; placement moves "
        "these numbers too, which is why the comparison above is pinned.",
        "why.c4.gil": "At {small} threads were slower than processes: CPython's global "
        "interpreter lock lets one thread run at a time, so a thread handoff is a futex wake-up "
        "plus a handoff of the lock, while two processes each have their own interpreter and "
        "lock.",
        "why.c4.slower": "At {small} threads were slower than processes although this Python has "
        "no global interpreter lock: for a message this small the wake-up is the whole cost.",
        "why.c4.copy": "At {large} threads were cheaper: a thread passes a reference to the "
        "bytes, while a pipe or a socket copies them into the kernel and out again.",
        "why.c4.shm": "The fastest process route at {large} was posix-shm: its bytes never pass "
        "a system call (shared memory), only its wake-up does (a semaphore).",
    },
    "zh": {
        "claim.communication": "C4（线程通信代价低，进程通信代价高）：线程通过共享内存廉价通信；"
        "进程必须经过内核。",
        "method.communication": "两端绑定在同一 CPU 上，往返传送 0 B 到 1 MiB 的消息：线程之间（"
        "队列传递引用；条件变量只是通知，数据留在原处）与进程之间（管道、Unix 套接字、POSIX 消息"
        "队列和 ZeroMQ 经内核复制数据；posix-shm 把数据留在共享内存中，用信号量唤醒对方）；另以线"
        "程之间的管道作对照。同样的交接再分到两个 CPU 上运行，以显示绑核方式这一混杂因素。",
        "step.communication": "communication：完成一个通道",
        "cm.title": "按消息大小的往返时间（中位数 [q1–q3]）",
        "cm.col.channel": "通道",
        "cm.col.between": "之间",
        "cm.errors": "本机无法测量的点",
        "cm.col.size": "大小",
        "cm.no_payload": "（仅通知）",
        "cm.col.error": "错误",
        "cm.group.thread": "线程之间，不经内核对象",
        "cm.group.process": "进程之间，数据经内核复制",
        "cm.group.control": "线程之间，经过内核",
        "verdict.communication": "两端绑定在同一 CPU 上时，最快进程通道与最快线程交接之比："
        "{ratios}。判定依据为 {small} 和 {large} 两点。",
        "threshold.communication": "“通信代价低”按最小和最大消息下进程与线程往返时间之比判断；两"
        "者结论相同即为该结论，不同则为部分成立",
        "q.c4": "最快的进程通道与最快的线程交接的往返时间之比",
        "step.communication.split": "communication：两端分在两个 CPU 上的测量完成",
        "cm.group.shm": "进程之间，数据在共享内存中，用信号量唤醒",
        "cm.split.title": "混杂因素：两端分在两个 CPU 上的同样交接（中位数）",
        "cm.col.split": "往返时间（两个 CPU）",
        "verdict.communication.split": "两端分在两个 CPU 上时：{split}；绑核方式同样会改变这些数"
        "字，所以上面的比较固定在同一 CPU 上。",
        "why.c4.gil": "{small} 时线程反而比进程慢：CPython 的全局解释器锁（GIL）一次只让一个线程"
        "运行，线程交接要一次 futex 唤醒再加一次锁的交接；两个进程则各有自己的解释器和锁。",
        "why.c4.slower": "{small} 时线程比进程慢，尽管这个 Python 没有全局解释器锁：消息这么小，"
        "开销几乎全在唤醒上。",
        "why.c4.copy": "{large} 时线程更便宜：线程只传递数据的引用，而管道或套接字要把数据复制进"
        "内核再复制出来。",
        "why.c4.shm": "{large} 时最快的进程通道是 posix-shm：数据从不经过系统调用（在共享内存"
        "中），只有唤醒经过内核（信号量）。",
    },
}
