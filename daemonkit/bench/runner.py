"""The runner: every case set up, measured and torn down the same way, wherever its peer lives.

Where the other end of a channel runs is a :class:`Target`: a peer forked or started as a
thread by this process (:mod:`daemonkit.bench.targets.local`), the running demo daemon
(:mod:`~daemonkit.bench.targets.daemon`), or a ``daemonkit serve`` on another host
(:mod:`~daemonkit.bench.targets.remote`). A target plans its cases and makes each case's other
end; everything else is this module's, once for all three.

Steps of one case (:func:`run_case`); every step that holds something is undone, in reverse,
on every path out (success, a failing channel, a peer killed with SIGKILL, Ctrl-C):

1. the target makes the case's other end (:meth:`Target.prepare`): kernel objects and a
   forked peer or thread, or a per-client endpoint at the daemon, or nothing for a remote
   server; each undo goes on the case's stack as soon as what it undoes exists;
2. the client end is opened, and the other end reports ready (:meth:`OtherEnd.open_client`);
3. warm-up and timed batches (:func:`daemonkit.bench.measure.measure`);
4. the stack is unwound: the client end (a peer blocked on the channel sees end-of-file),
   the peer stopped and reaped, the kernel objects removed.

Facts about errors:

* A channel that cannot carry the size here (:class:`SizeNotSupportedError`), or cannot run
  here at all (:class:`NotSupportedHereError`), makes the case *skipped*; any other daemonkit
  error, an ``OSError`` or a ZeroMQ error becomes the case's *error* and the next case runs.
  So does any other exception, with its type named: a bug in one channel module must not hide
  the other channels' figures.
* The other end may explain an error (:meth:`OtherEnd.explain`): a forked peer killed by
  SIGKILL says so, after it has been reaped.

Facts about interruptions:

* Ctrl-C sends SIGINT to the whole foreground process group; Python turns it into
  ``KeyboardInterrupt`` in the main thread; SIGTERM and SIGHUP are made to do the same
  (:mod:`daemonkit.interrupts`). While a case is set up (step 1) or torn down (step 4),
  all three are *blocked* (``pthread_sigmask``): one stays pending in the kernel and is
  delivered when the block ends, so it can interrupt the measurement or a wait for the other
  end but never a half-made setup or a half-done cleanup. A forked peer or thread created in
  that window inherits the blocked mask: it leaves because the client end closes
  (end-of-file) or its command pipe does, or at worst because it is killed.
* A Ctrl-C that a C extension swallows (posix_ipc retries its wait) is still recorded
  (:func:`daemonkit.interrupts.record_interrupts`); the run stops after that case.

*Kernel path*: sched_setaffinity(2) for the client; pthread_sigmask(2) around steps 1 and 4;
the rest is the target's and the channel's.
*Lifetime*: every object of a case lives exactly as long as the case; the target's own
(a connection to a server) until :meth:`Target.close`.
*See also*: sigprocmask(2), signal(7), sched_setaffinity(2).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import zmq

from daemonkit.bench.measure import Link, Progress, Settings, measure
from daemonkit.bench.results import Result
from daemonkit.channels.base import End
from daemonkit.errors import DaemonkitError, NotSupportedHereError
from daemonkit.interrupts import INTERRUPTS, record_interrupts
from daemonkit.machine import CpuMode, Placement

__all__ = [
    "CASE_ERRORS",
    "Case",
    "OtherEnd",
    "Target",
    "interrupts_deferred",
    "run",
    "run_case",
]

# The failures that become one case's error (and not the whole run's): see the module docstring.
CASE_ERRORS: tuple[type[Exception], ...] = (DaemonkitError, OSError, zmq.ZMQError)


@dataclass(frozen=True)
class Case:
    """One measurement to make: a channel, where its other end runs, a message size."""

    channel: str
    peer: str  # the result's peer: process, thread, daemon or remote
    size: int
    payload: bool  # False for a notification (signals, semaphores): no bytes travel

    def result(self, cpu: CpuMode) -> Result:
        """The case's result before anything is measured."""
        return Result(self.channel, self.peer, cpu, self.size, self.payload)


class OtherEnd(Protocol):
    """One case's other end, as :meth:`Target.prepare` made it."""

    @property
    def link(self) -> Link:
        """What the timed batches may ask of the other end (a deadline, its counters)."""
        ...

    def open_client(self, stack: contextlib.ExitStack) -> tuple[End, list[int] | None]:
        """Step 2: the client end (its close pushed on *stack*) once the other end is
        ready, and the CPUs the other end may run on (None when not known).

        May block while the other end gets ready: interrupts are not held here.
        """
        ...

    def explain(self, message: str) -> str:
        """*message*, with what is known of the other end's fate (after teardown)."""
        ...


class Target(Protocol):
    """Where the other ends live: plans the cases and makes each case's other end."""

    def plan(
        self, channels: Sequence[str], sizes: Sequence[int], cpu: CpuMode
    ) -> list[Case | Result]:
        """The cases, in order; a :class:`Result` marks one that cannot run, with why."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What the results document records of the target (beside this machine's facts)."""
        ...

    def prepare(self, case: Case, place: Placement, stack: contextlib.ExitStack) -> OtherEnd:
        """Step 1: make *case*'s other end, pushing each undo on *stack* as soon as what it
        undoes exists. Runs with interrupts held: it must not wait long."""
        ...

    def close(self) -> None:
        """Let go of what the target holds across cases. Safe to call twice."""
        ...


def run(
    target: Target,
    cases: Sequence[Case | Result],
    settings: Settings,
    place: Placement,
    progress: Callable[[int, str, float], None] | None = None,
) -> list[Result]:
    """Run every case in order with the client pinned as *place* says; results in order.

    A :class:`Result` among *cases* is passed through (a case that cannot run).
    """
    results: list[Result] = []
    original = os.sched_getaffinity(0)
    # A Ctrl-C swallowed by a C extension (posix_ipc) is still in the record.
    with contextlib.ExitStack() as stack:
        ctrl_c = stack.enter_context(record_interrupts())
        stack.callback(os.sched_setaffinity, 0, original)
        if place.client_cpu is not None:
            os.sched_setaffinity(0, {place.client_cpu})  # this thread; peers pin themselves
        for i, case in enumerate(cases):
            if isinstance(case, Result):
                results.append(case)
                continue

            def step(what: str, frac: float, i: int = i) -> None:
                if progress is not None:
                    progress(i, what, frac)

            results.append(run_case(target, case, settings, place, step))
            if ctrl_c.seen:  # the case ended as an "error" caused by Ctrl-C: stop here
                raise KeyboardInterrupt
    return results


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP pending in the kernel until the block ends (see the
    module docstring)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        # Undo only our own change: a channel made inside (signal, rt-signal) blocks its
        # signal in this thread, and restoring the whole old mask would unblock it.
        ours = set(INTERRUPTS) - old
        if ours:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, ours)  # pending ones: now


def run_case(
    target: Target, case: Case, settings: Settings, place: Placement, progress: Progress
) -> Result:
    """Measure one case; a failure of the channel or its other end becomes the result's error."""
    base = case.result(place.mode)
    stack = contextlib.ExitStack()
    other: OtherEnd | None = None
    try:
        try:
            with interrupts_deferred():
                other = target.prepare(case, place, stack)  # step 1
            end, peer_cpus = other.open_client(stack)  # step 2
            if settings.mode == "stream":  # step 3: one-way messages
                from daemonkit.bench.stream import measure_stream

                return measure_stream(base, end, other.link, settings, progress, peer_cpus)
            return measure(base, end, other.link, settings, progress, peer_cpus)  # step 3
        finally:
            with interrupts_deferred():
                stack.close()  # step 4: client end, other end, kernel objects, in that order
    except NotSupportedHereError as exc:
        return replace(base, skipped=str(exc))
    except CASE_ERRORS as exc:
        return replace(base, error=_explained(str(exc), other))
    except Exception as exc:  # a bug in a channel module: reported as its error, loudly
        return replace(base, error=_explained(f"{type(exc).__name__}: {exc}", other))


def _explained(message: str, other: OtherEnd | None) -> str:
    return other.explain(message) if other is not None else message
