"""The scheduler's events as data: what ``perf script`` prints, parsed into small records.

One line of ``perf script --ns -F tid,cpu,time,event,trace`` is one event::

    21691 [001]   418.242257662: sched:sched_switch: prev_comm=python3 prev_pid=21691 ...

the thread that was running (for a wake-up: the waker), the CPU, the CLOCK_MONOTONIC time
in seconds with nanoseconds, the tracepoint, and its fields as the kernel's format prints
them. A task's name (``comm``) may contain spaces, so the fields are matched by the names
that follow them, not split on blanks.

Facts about the kinds:

* :class:`Switch`: CPU *cpu* stops running *prev* and starts *next* (``pid`` 0 is the idle
  task, one per CPU, named ``swapper/N``). *prev_state* is how *prev* left: ``R`` (or
  ``R+``) still runnable, so it was preempted (an involuntary switch in getrusage(2)), any
  other state (``S`` sleeping, ``D`` uninterruptible) a voluntary one.
* :class:`Wake`: ``sched_waking`` (*woken* made runnable by *waker*, on the waker's CPU) or
  ``sched_wakeup`` (*woken* is on *target_cpu*'s run queue; on another CPU this may come
  later, after an inter-processor interrupt).
* :class:`FutexWait`: a thread entered futex(2) to wait (``FUTEX_WAIT``/``FUTEX_WAIT_BITSET``;
  the ``FUTEX_PRIVATE_FLAG``/``FUTEX_CLOCK_REALTIME`` bits are masked off), or left a futex
  call. A thread that is switched out between the two slept on the futex: on a lock.
* :class:`Lost`: perf's buffer for a CPU was full (perf, a task like any other, did not get
  to read it in time: a loaded machine) and the kernel dropped events; the ``LOST`` line says
  how many, on which CPU, and when perf could write again. Between that CPU's previous event
  and then, switches may be missing: who seems to run there may not have.

Switches out of the idle task come from a second source. perf records no tracepoint while
the idle task is the running one (seen on Linux 6.18: not one ``sched_switch`` with
``prev_pid=0``, and no ``sched_wakeup`` from the inter-processor interrupt that wakes an idle
CPU), so a CPU that went idle would seem idle until its next task switched *out*: a peer
woken on an idle CPU would never appear to run. perf's own context-switch records
(``perf record --switch-events``) are written by the task switched *in*, so they are there::

    21693 [001]   418.242261002: PERF_RECORD_SWITCH_CPU_WIDE IN  prev pid/tid:     0/0

An ``IN`` record whose previous task is the idle one becomes a :class:`Switch` from
``swapper/N`` (state ``R``), unless the tracepoint already said the CPU went to that task
(a kernel that does record the idle task's tracepoints). Its time is when the new task
began to run, a little after the tracepoint's would be (it is taken after the switch).

*Kernel path*: none; the text comes from ``perf script`` reading perf's data file.
*Lifetime*: plain values. *See also*: perf-script(1), futex(2), Documentation/trace/events.rst.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Event", "FutexWait", "Lost", "Switch", "Wake", "parse_script"]


@dataclass(frozen=True, slots=True)
class Switch:
    ts: int  # ns, CLOCK_MONOTONIC
    cpu: int
    prev_pid: int
    prev_comm: str
    prev_state: str
    next_pid: int
    next_comm: str

    @property
    def preempted(self) -> bool:
        return self.prev_state.startswith("R")


@dataclass(frozen=True, slots=True)
class Wake:
    ts: int
    cpu: int  # where the event was recorded: the waker's CPU for "waking"
    waker: int  # the thread running on *cpu* at that moment (0: idle, e.g. an interrupt)
    woken: int
    woken_comm: str
    target_cpu: int
    kind: str  # "waking" or "wakeup"


@dataclass(frozen=True, slots=True)
class FutexWait:
    """*tid* entered futex(2) to wait (``done`` False), or left that call (``done`` True)."""

    ts: int
    cpu: int
    tid: int
    done: bool
    uaddr: int = 0  # the futex word's address (0 for ``done``): which lock


@dataclass(frozen=True, slots=True)
class Lost:
    """perf found *count* events of *cpu* lost (its buffer was full: perf did not read it in
    time) when it wrote this record at *ts*: they lie between the CPU's previous event and
    *ts*."""

    ts: int
    cpu: int
    count: int


Event = Switch | Wake | FutexWait | Lost

_LINE = re.compile(r"^\s*(-?\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+(\S+):\s?(.*)$")
_SWITCH = re.compile(
    r"prev_comm=(.*) prev_pid=(\d+) prev_prio=-?\d+ prev_state=(\S+) ==> "
    r"next_comm=(.*) next_pid=(\d+) next_prio=-?\d+"
)
_WAKE = re.compile(r"comm=(.*) pid=(\d+) prio=-?\d+ target_cpu=(\d+)")
_FUTEX_OP = re.compile(r"uaddr: 0x([0-9a-f]+), op: 0x([0-9a-f]+)")
_LOST = re.compile(r"LOST (\d+) events")
_LOST_AT = re.compile(r"^\s*\d+\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+LOST (\d+) events")
_SWITCH_IN_FROM = re.compile(  # tid -1: a task that is exiting
    r"^\s*(-?\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+PERF_RECORD_SWITCH_CPU_WIDE IN\s+"
    r"prev pid/tid:\s*-?\d+/(-?\d+)"
)
_FUTEX_WAIT_CMDS = {0, 9}  # FUTEX_WAIT, FUTEX_WAIT_BITSET <linux/futex.h>
_FUTEX_CMD_MASK = ~(128 | 256)  # without FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME


def parse_script(text: str) -> tuple[list[Event], int]:
    """The events of ``perf script`` output in time order (where perf lost some, a
    :class:`Lost` record), and how many perf lost."""
    events: list[Event] = []
    lost = 0
    from_idle: list[tuple[int, int, int]] = []  # (ts, cpu, tid): the CPU left its idle task
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            if (sw := _SWITCH_IN_FROM.match(line)) is not None and int(sw.group(5)) == 0:
                ts = int(sw.group(3)) * 1_000_000_000 + int(sw.group(4))
                from_idle.append((ts, int(sw.group(2)), int(sw.group(1))))
            if (at := _LOST_AT.match(line)) is not None:
                ts = int(at.group(2)) * 1_000_000_000 + int(at.group(3))
                events.append(Lost(ts, int(at.group(1)), int(at.group(4))))
            if (lm := _LOST.search(line)) is not None:
                lost += int(lm.group(1))
            continue
        tid, cpu = int(m.group(1)), int(m.group(2))
        ts = int(m.group(3)) * 1_000_000_000 + int(m.group(4))
        name, fields = m.group(5), m.group(6)
        if name == "sched:sched_switch" and (s := _SWITCH.match(fields)):
            events.append(
                Switch(
                    ts, cpu, int(s.group(2)), s.group(1), s.group(3), int(s.group(5)), s.group(4)
                )
            )
        elif name in ("sched:sched_waking", "sched:sched_wakeup") and (w := _WAKE.match(fields)):
            kind = name.rpartition("_")[2]
            events.append(Wake(ts, cpu, tid, int(w.group(2)), w.group(1), int(w.group(3)), kind))
        elif name == "syscalls:sys_enter_futex" and (f := _FUTEX_OP.search(fields)):
            if int(f.group(2), 16) & _FUTEX_CMD_MASK in _FUTEX_WAIT_CMDS:
                events.append(FutexWait(ts, cpu, tid, done=False, uaddr=int(f.group(1), 16)))
        elif name == "syscalls:sys_exit_futex":
            events.append(FutexWait(ts, cpu, tid, done=True))
        elif (lm := _LOST.search(line)) is not None:
            lost += int(lm.group(1))
    if from_idle:
        events += _switches_from_idle(events, from_idle)
    events.sort(key=lambda e: e.ts)  # perf script merges the CPUs' buffers; keep it certain
    return events, lost


def _switches_from_idle(events: list[Event], from_idle: list[tuple[int, int, int]]) -> list[Switch]:
    """:class:`Switch` records for the CPUs' switches from their idle task that the
    tracepoint did not record (perf's ``IN`` records of the tasks switched in)."""
    comms: dict[int, str] = {}
    for e in events:
        if isinstance(e, Switch):
            comms.setdefault(e.prev_pid, e.prev_comm)
            comms.setdefault(e.next_pid, e.next_comm)
        elif isinstance(e, Wake):
            comms.setdefault(e.woken, e.woken_comm)
    merged: list[Switch | tuple[int, int, int]] = [e for e in events if isinstance(e, Switch)]
    merged += from_idle
    merged.sort(key=lambda e: e.ts if isinstance(e, Switch) else e[0])
    running: dict[int, int] = {}  # CPU -> the task its last switch went to
    out = []
    for item in merged:
        if isinstance(item, Switch):
            running[item.cpu] = item.next_pid
            continue
        ts, cpu, tid = item
        if running.get(cpu) == tid:  # the tracepoint has this switch already
            continue
        running[cpu] = tid
        out.append(Switch(ts, cpu, 0, f"swapper/{cpu}", "R", tid, comms.get(tid, str(tid))))
    return out
