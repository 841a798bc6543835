"""How long it takes one process to wake another: a semaphore handoff versus a signal handoff.

Two processes play ping-pong, one wake-up each way per round trip:

* ``semaphore``: two POSIX named semaphores; the parent posts ``ping`` and waits on ``pong``,
  the child waits on ``ping`` and posts ``pong``. ``sem_post`` on a semaphore with a waiter
  is a ``futex(FUTEX_WAKE)``, the wait a ``futex(FUTEX_WAIT)``.
* ``signal``: the parent sends SIGUSR1 with ``kill(2)`` and waits in ``sigtimedwait(2)`` for
  SIGUSR2; the child answers with ``tgkill(2)`` to the parent's waiting *thread*. Both signals
  are blocked, so each is taken from the pending set by the waiting call, with no handler to
  run. The answer is thread-directed because a signal sent to a process goes to any of its
  threads that does not block it, whose default action for SIGUSR2 ends the whole process.

Every wait has a deadline (:data:`TIMEOUT`): a peer that died cannot leave the other waiting
forever.

Neither carries data: the figure is the price of a notification alone. Each batch's median
round trip is kept, over several batches, so the verdict engine has repeats to resample.

Kernel path: futex(2) (semaphore); kill(2) and tgkill(2), the pending set,
rt_sigtimedwait(2) (signal).
Lifetime: the semaphores are unlinked by the parent on every path; the child is reaped
(:func:`daemonkit.lessons._child.in_child`); the parent's signal mask is restored.
See also: sem_overview(7), futex(7), signal(7), sigwaitinfo(2).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import statistics
import threading
import time
from array import array
from collections.abc import Callable

import posix_ipc

from daemonkit._libc import errno_error, libc
from daemonkit.errors import DaemonkitError
from daemonkit.lessons._child import in_child
from daemonkit.runtime import object_name

__all__ = ["handoff"]

PING, PONG = signal.SIGUSR1, signal.SIGUSR2
TIMEOUT = 10.0  # seconds any one wait may take before the peer is taken for dead

libc.tgkill.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)


def _tgkill(tgid: int, tid: int, sig: int) -> None:
    if libc.tgkill(tgid, tid, sig) != 0:
        raise errno_error("tgkill")


def _wait_signal(sig: int) -> None:
    if signal.sigtimedwait({sig}, TIMEOUT) is None:
        raise DaemonkitError(f"handoff: no {signal.Signals(sig).name} within {TIMEOUT:.0f} s")


def _acquire(sem: posix_ipc.Semaphore) -> None:
    try:
        sem.acquire(TIMEOUT)
    except posix_ipc.BusyError as exc:
        raise DaemonkitError(f"handoff: no semaphore post within {TIMEOUT:.0f} s") from exc


def _batches(one: Callable[[], None], n: int, reps: int) -> list[float]:
    """*reps* batches of *n* timed round trips: each batch's median, in ns."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(reps):
        samples = array("q", [0] * n)
        for i in range(n):
            t0 = clock()
            one()
            samples[i] = clock() - t0
        out.append(float(statistics.median(samples)))
    return out


def _ping_pong(
    child: Callable[[], int], one_for: Callable[[int], Callable[[], None]], n: int, reps: int
) -> list[float]:
    """Fork *child* (it answers ``n * reps + 1`` pings); in the parent, one warm-up round
    trip of ``one_for(child's pid)``, then :func:`_batches` of it."""
    got: list[float] = []

    def parent(pid: int) -> None:
        one = one_for(pid)
        one()
        got.extend(_batches(one, n, reps))

    in_child(child, after_fork=parent)
    return got


def _semaphore(n: int, reps: int) -> list[float]:
    names = (object_name("sem", posix=True), object_name("sem", posix=True))
    sems = [posix_ipc.Semaphore(x, posix_ipc.O_CREX, mode=0o600, initial_value=0) for x in names]
    ping, pong = sems
    total = n * reps + 1  # one warm-up round trip first

    def child() -> int:
        for _ in range(total):
            _acquire(ping)  # futex wait until the parent posts
            pong.release()  # futex wake of the parent
        return total

    def one() -> None:
        ping.release()
        _acquire(pong)

    try:
        return _ping_pong(child, lambda pid: one, n, reps)
    finally:
        for s in sems:
            with contextlib.suppress(posix_ipc.ExistentialError):
                s.unlink()  # the creator removes the names
            s.close()


def _signal(n: int, reps: int) -> list[float]:
    total = n * reps + 1
    me, waiter = os.getpid(), threading.get_native_id()
    # Blocked before the fork: the child inherits the mask, so no signal is ever lost to a
    # default action between the fork and the child's first wait.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {PING, PONG})

    def child() -> int:
        for _ in range(total):
            _wait_signal(PING)  # taken from the pending set, no handler runs
            _tgkill(me, waiter, PONG)  # to the thread that waits, not to any thread
        return total

    def one_for(pid: int) -> Callable[[], None]:
        def one() -> None:
            os.kill(pid, PING)  # the child has one thread
            _wait_signal(PONG)

        return one

    try:
        return _ping_pong(child, one_for, n, reps)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def handoff(n: int, reps: int) -> dict[str, list[float]]:
    """Per-batch median round trips (ns) of the semaphore and the signal ping-pong."""
    return {"semaphore": _semaphore(n, reps), "signal": _signal(n, reps)}
