"""C5: a semaphore is a counter; a signal is a notification (信号量 / 信号).

Three bursts of K notifications from this process to a forked receiver, counted afterwards:

1. K ``sem_post`` on a POSIX named semaphore, then the receiver ``sem_trywait``s until it
   would block: the kernel-side counter (a futex word in a shared page) kept every post.
2. K ``sigqueue(SIGUSR1, i)`` while the receiver blocks SIGUSR1, then it drains its pending
   signals: a standard signal is one *bit* in the pending set, so the burst collapses to one
   delivery (carrying the value of the first send).
3. K ``sigqueue(SIGRTMIN, i)``: real-time signals are *queued*, one siginfo each, up to
   ``RLIMIT_SIGPENDING``; all K come out, in the order sent.

The receiver reads its signals from a ``signalfd(2)``, which returns each queued ``siginfo``
with its value (``ssi_int``), so the order can be checked. Neither a semaphore nor a signal
carries the data itself: the integer value of a queued signal is the most a signal can carry.

Kernel path: futex(2) behind sem_post/sem_trywait; rt_sigqueueinfo(2) behind sigqueue(3);
the kernel's per-thread pending set (one bit per standard signal, a queue per real-time one);
signalfd(2) to dequeue them.

Lifetime: the semaphore (``/dev/shm/sem.dk.PID.sem.N``) is unlinked by this process on every
path; the receiver is reaped.

See also: sem_overview(7), signal(7) ("Queueing and delivery semantics for standard
signals", "Real-time signals"), sigqueue(3), signalfd(2), getrlimit(2) (RLIMIT_SIGPENDING).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import struct
from typing import Any

import posix_ipc

from daemonkit._libc import errno_error, libc
from daemonkit.lessons._child import in_child
from daemonkit.lessons.report import Table, Tick, Verdict
from daemonkit.lessons.text import Tr
from daemonkit.runtime import object_name

__all__ = ["CLAIMS", "NAME", "run", "steps", "tables", "verdicts"]

NAME = "semaphore-vs-signal"
CLAIMS = ("C5",)

STANDARD = signal.SIGUSR1
REALTIME = signal.SIGRTMIN

# union sigval is 8 bytes of integer class: the C ABI passes it in a register like a long
# (ctypes refuses unions by value, so the long stands in for it).
libc.sigqueue.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long)
libc.signalfd.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_SIGINFO = 128  # sizeof(struct signalfd_siginfo)


def _sigqueue(pid: int, sig: int, value: int) -> bool:
    """Queue *sig* with *value* to *pid*; False when the kernel refused (queue full)."""
    if libc.sigqueue(pid, sig, value) == 0:
        return True
    if ctypes.get_errno() == errno.EAGAIN:  # RLIMIT_SIGPENDING reached: not queued
        return False
    raise errno_error("sigqueue")


def _signalfd(sigs: list[int]) -> int:
    """A non-blocking descriptor that reads the pending *sigs* of this thread as siginfo."""
    mask = (ctypes.c_ulong * 16)()  # glibc's sigset_t: 1024 bits
    for s in sigs:
        mask[0] |= 1 << (s - 1)
    fd = int(libc.signalfd(-1, ctypes.byref(mask), os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        raise errno_error("signalfd")
    return fd


def _drain(fd: int) -> list[tuple[int, int]]:
    """Every pending signal as (signo, value), in the order the kernel dequeues them."""
    got: list[tuple[int, int]] = []
    while True:
        try:
            data = os.read(fd, _SIGINFO * 64)
        except BlockingIOError:
            return got
        for off in range(0, len(data), _SIGINFO):
            (signo,) = struct.unpack_from("=I", data, off)  # ssi_signo
            (value,) = struct.unpack_from("=i", data, off + 44)  # ssi_int
            got.append((signo, value))


def _burst(k: int, sem_name: str) -> dict[str, Any]:
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    sent = {"standard": 0, "realtime": 0}

    def receiver() -> dict[str, Any]:
        os.close(ready_r)
        os.close(go_w)
        signal.pthread_sigmask(signal.SIG_BLOCK, {STANDARD, REALTIME})  # keep them pending
        fd = _signalfd([STANDARD, REALTIME])
        sem = posix_ipc.Semaphore(sem_name)
        os.write(ready_w, b"r")
        os.read(go_r, 1)  # the sender is done: count what is there
        waits = 0
        with contextlib.suppress(posix_ipc.BusyError):
            while True:
                sem.acquire(0)  # sem_trywait: succeeds once per post still counted
                waits += 1
        sem.close()
        sigs = _drain(fd)
        os.close(fd)
        return {
            "sem_waits": waits,
            "standard": [v for s, v in sigs if s == STANDARD],
            "realtime": [v for s, v in sigs if s == REALTIME],
        }

    def sender(pid: int) -> None:
        os.close(ready_w)
        os.close(go_r)
        if os.read(ready_r, 1) != b"r":
            return  # the receiver failed before it was ready; its error comes back
        sem = posix_ipc.Semaphore(sem_name)
        for _ in range(k):
            sem.release()  # sem_post
        sem.close()
        for i in range(k):
            sent["standard"] += _sigqueue(pid, STANDARD, i)
        for i in range(k):
            sent["realtime"] += _sigqueue(pid, REALTIME, i)
        os.write(go_w, b"g")

    try:
        got: dict[str, Any] = in_child(receiver, after_fork=sender)
    finally:
        for fd in (ready_r, ready_w, go_r, go_w):
            with contextlib.suppress(OSError):
                os.close(fd)
    return {
        "k": k,
        "sem_posts": k,
        "sem_waits": got["sem_waits"],
        "standard_sent": sent["standard"],
        "standard_delivered": len(got["standard"]),
        "standard_values": got["standard"],
        "realtime_sent": sent["realtime"],
        "realtime_delivered": len(got["realtime"]),
        "realtime_in_order": got["realtime"] == sorted(got["realtime"]),
        "realtime_values_head": got["realtime"][:10],
    }


def steps(quick: bool) -> int:
    """How many times ``run`` ticks (for the progress bar)."""
    return 1


def run(quick: bool, tick: Tick, k: int = 1000) -> dict[str, Any]:
    name = object_name("sem", posix=True)
    sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, mode=0o600, initial_value=0)
    try:
        m = _burst(k, name)
    finally:
        sem.unlink()  # the creator removes the name; the receiver has let go already
        sem.close()
    tick("step.semaphore-vs-signal")
    return m


def verdicts(m: dict[str, Any]) -> list[Verdict]:
    checks = {
        "sem": m["sem_waits"] == m["sem_posts"],
        "standard": m["standard_delivered"] < m["standard_sent"],
        "realtime": m["realtime_delivered"] == m["realtime_sent"] and m["realtime_in_order"],
    }
    ok = sum(checks.values())
    label: Any = "holds" if ok == 3 else "does not hold" if ok == 0 else "partly holds"
    args = {
        "k": m["k"],
        "waits": m["sem_waits"],
        "std": m["standard_delivered"],
        "std_sent": m["standard_sent"],
        "rt": m["realtime_delivered"],
        "rt_sent": m["realtime_sent"],
        "order": "✓" if m["realtime_in_order"] else "✗",
    }
    return [
        Verdict("C5", label, "verdict.semaphore-vs-signal", "threshold.semaphore-vs-signal", args)
    ]


def tables(m: dict[str, Any], tr: Tr) -> list[Table]:
    rt_order = tr("yes") if m["realtime_in_order"] else tr("no")
    rows = [
        [tr("sv.sem"), str(m["sem_posts"]), str(m["sem_waits"]), "-"],
        [
            tr("sv.standard"),
            str(m["standard_sent"]),
            str(m["standard_delivered"]),
            tr("sv.values", v=m["standard_values"][:5]),
        ],
        [
            tr("sv.realtime"),
            str(m["realtime_sent"]),
            str(m["realtime_delivered"]),
            tr("sv.order", ok=rt_order, v=m["realtime_values_head"][:5]),
        ],
    ]
    return [
        Table("sv.title", ("sv.col.what", "sv.col.sent", "sv.col.delivered", "sv.col.note"), rows)
    ]
