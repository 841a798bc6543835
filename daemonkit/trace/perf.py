"""Record the scheduler's own events with ``perf record``, switched on only around the round trips.

Steps of :class:`SchedRecorder` (a context manager; every step undone on every path out):

1. check that recording can work at all (:func:`missing`): perf installed, tracefs in the
   kernel, root or a low enough ``perf_event_paranoid``; else :class:`TraceUnavailableError`
   names the one thing that is missing;
2. start ``perf record`` with its events *disabled* (``--delay=-1``) in its own process group,
   in a private 0700 directory, talking to us over two pipes (``--control fd:CTL,ACK``);
3. ``enable`` / ``disable`` around the measured loop: perf acknowledges each command, so the
   events are known to be on before the first round trip and off after the last;
4. stop: close perf's standard input. Its workload is ``cat`` reading that pipe, so perf ends
   when we close it, and also when this process dies in any way (even SIGKILL): the pipe's
   last writer is gone, ``cat`` sees end-of-file, perf writes its file and exits. No perf is
   left recording a machine nobody is measuring;
5. decode the file with ``perf script`` into :mod:`daemonkit.trace.events`, then remove the
   directory.

Facts about what is recorded:

* ``sched:sched_switch`` (a CPU goes from one task to another, with the state the old one
  left in: ``R`` preempted, ``S``/``D`` went to sleep), ``sched:sched_waking`` (a task makes
  another runnable: the waker is the task running at that moment) and ``sched:sched_wakeup``
  (the woken task is on its CPU's run queue), on the CPUs of the two ends, for every task:
  who else ran there is part of the picture.
* perf's own context-switch records (``--switch-events``): perf records no tracepoint while
  a CPU's idle task is running, so the switches *out of* idle are taken from the record the
  task switched in writes (:mod:`daemonkit.trace.events`).
* ``syscalls:sys_enter_futex``/``sys_exit_futex`` for the two ends' threads only (a filter
  on ``common_pid``): a thread that sleeps inside a futex wait is waiting for a lock; the
  futex word's address says which (:mod:`daemonkit.trace.analysis`).
* Timestamps are CLOCK_MONOTONIC (``-k``), the clock of ``time.perf_counter_ns``: the
  events line up with the times the client took itself.
* perf does not touch the ftrace state (``tracing_on``, ``current_tracer``, the events
  enabled in tracefs, its instances): it opens one perf event per tracepoint and CPU
  through perf_event_open(2) and reads their ring buffers. It reads the events' formats
  from tracefs and mounts it at /sys/kernel/tracing if it is not mounted; a mount perf
  made is unmounted again when the recorder closes.

*Kernel path*: perf_event_open(2) per tracepoint and CPU, mmap(2) of the ring buffers,
ioctl(2) ``PERF_EVENT_IOC_ENABLE``/``DISABLE`` on the control commands.
*Lifetime*: the perf process, its ``cat`` and the data file live as long as the block. If
this process is killed by SIGKILL, perf still stops (its ``cat`` sees end-of-file) and the
next recorder removes the directory it left (its name carries the dead pid).
*See also*: perf-record(1), perf-script(1), perf_event_open(2), the kernel's
Documentation/trace/events.rst.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from daemonkit._libc import libc
from daemonkit.errors import DaemonkitError
from daemonkit.runtime import pid_alive
from daemonkit.trace.events import Event, parse_script

__all__ = [
    "EVENTS",
    "FUTEX_EVENTS",
    "SchedRecorder",
    "TraceUnavailableError",
    "missing",
    "tracefs_mounts",
]

EVENTS = ("sched:sched_switch", "sched:sched_waking", "sched:sched_wakeup")
FUTEX_EVENTS = ("syscalls:sys_enter_futex", "syscalls:sys_exit_futex")
PARANOID = Path("/proc/sys/kernel/perf_event_paranoid")
_ACK_TIMEOUT = 20.0  # s: perf reads the kernel's symbol tables before its first answer
_STOP_TIMEOUT = 30.0  # s: perf writes what it buffered and exits


class TraceUnavailableError(DaemonkitError):
    """The scheduler's events cannot be recorded here: a privilege or a facility is missing."""

    exit_code = 77  # sysexits(3) EX_NOPERM; distinct from every other daemonkit exit code


def missing() -> str | None:
    """None when perf can record the scheduler's tracepoints here, else what is missing."""
    if shutil.which("perf") is None:
        return "perf is not installed (Debian package linux-perf)"
    with open("/proc/filesystems", encoding="ascii") as f:
        if not any(line.split()[-1] == "tracefs" for line in f if line.strip()):
            return "this kernel has no tracefs (CONFIG_TRACING), so no scheduler tracepoints"
    if os.geteuid() == 0:
        return None
    try:
        paranoid = int(PARANOID.read_text())
    except OSError:
        return f"{PARANOID} is missing: this kernel has no perf events"
    if paranoid > -1:
        return (
            f"not root (uid {os.geteuid()}) and kernel.perf_event_paranoid is {paranoid}: "
            "system-wide tracepoints need root or -1"
        )
    return None


_DIR_PREFIX = "daemonkit-trace-"  # then the recording process's pid: who may remove it


def _remove_stale_dirs() -> None:
    """Remove the data directories of recorders whose process is gone (killed by SIGKILL:
    its perf stopped, but nobody removed what it wrote)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*"):
        pid = path.name[len(_DIR_PREFIX) :].partition("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)) and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def tracefs_mounts() -> list[str]:
    """Where tracefs is mounted now (perf mounts it at /sys/kernel/tracing when it is not)."""
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return [
            fields[1] for line in f if len(fields := line.split()) > 2 and fields[2] == "tracefs"
        ]


class SchedRecorder:
    """One ``perf record`` of the scheduler's events on *cpus* (None: every CPU)."""

    _proc: subprocess.Popen[bytes] | None = None
    _dir: str | None = None
    _stdin_w = -1
    _ctl_w = -1
    _ack_r = -1
    _mounts: list[str] | None = None  # tracefs mounts before perf started

    def __init__(self, cpus: Sequence[int] | None, tids: Sequence[int]) -> None:
        self.cpus = sorted(set(cpus)) if cpus is not None else None
        self.tids = list(tids)
        self.lost = 0

    def __enter__(self) -> SchedRecorder:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> None:
        why = missing()
        if why is not None:
            raise TraceUnavailableError(f"cannot record the scheduler's events: {why}")
        self._mounts = tracefs_mounts()
        _remove_stale_dirs()
        self._dir = tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-")  # 0700
        stdin_r, self._stdin_w = os.pipe2(os.O_CLOEXEC)
        ctl_r, self._ctl_w = os.pipe2(os.O_CLOEXEC)
        self._ack_r, ack_w = os.pipe2(os.O_CLOEXEC)
        futex_filter = " || ".join(f"common_pid == {t}" for t in self.tids)
        cmd = ["perf", "record", "--quiet", "--delay=-1", f"--control=fd:{ctl_r},{ack_w}"]
        cmd += ["--all-cpus"] if self.cpus is None else ["--cpu", ",".join(map(str, self.cpus))]
        cmd += ["--clockid=CLOCK_MONOTONIC", "--mmap-pages=1024", "-o", self.data_path]
        cmd += ["--switch-events"]  # the switches out of the idle task (see events.py)
        for event in EVENTS:
            cmd += ["-e", event]
        for event in FUTEX_EVENTS:
            cmd += ["-e", event, "--filter", futex_filter]
        cmd += ["--", "cat"]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=stdin_r,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(ctl_r, ack_w),
                process_group=0,  # a Ctrl-C at the terminal is ours to handle, not perf's
            )
        finally:
            for fd in (stdin_r, ctl_r, ack_w):  # perf holds them now
                os.close(fd)
        self._command("ping")  # perf is up and its events are open

    @property
    def data_path(self) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, "sched.data")

    def _command(self, what: str) -> None:
        """Send a control command and wait for perf's ``ack``."""
        assert self._proc is not None
        os.write(self._ctl_w, what.encode() + b"\n")
        ready, _, _ = select.select([self._ack_r], [], [], _ACK_TIMEOUT)
        reply = os.read(self._ack_r, 64) if ready else b""
        if not reply.startswith(b"ack"):
            raise TraceUnavailableError(f"perf record did not start: {self._perf_error()}")

    def _perf_error(self) -> str:
        assert self._proc is not None and self._proc.stderr is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=2)
        if self._proc.returncode is None:
            return f"no answer within {_ACK_TIMEOUT:g} s"
        lines = [
            ln.strip() for ln in self._proc.stderr.read().decode(errors="replace").splitlines()
        ]
        lines = [ln for ln in lines if ln]
        return lines[0] if lines else f"perf exited with status {self._proc.returncode}"

    def enable(self) -> None:
        """Events on: returns once perf says every tracepoint is enabled."""
        self._command("enable")

    def disable(self) -> None:
        """Events off: returns once perf says they are."""
        self._command("disable")

    def events(self) -> list[Event]:
        """Stop perf, then decode what it recorded (call once, after :meth:`disable`)."""
        self._stop()
        assert self._proc is not None
        if self._proc.returncode != 0:
            raise DaemonkitError(f"perf record failed: {self._perf_error()}")
        done = subprocess.run(
            [
                "perf",
                "script",
                "-i",
                self.data_path,
                "--ns",
                "--show-lost-events",
                "--show-switch-events",
                "-F",
                "tid,cpu,time,event,trace",
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=120,
        )
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1:] or ["no message"]
            raise DaemonkitError(f"perf script failed: {last[0]}")
        found, self.lost = parse_script(done.stdout)
        return found

    def _stop(self) -> None:
        """Close perf's stdin: its ``cat`` ends, perf writes the data file and exits."""
        if self._stdin_w >= 0:
            os.close(self._stdin_w)
            self._stdin_w = -1
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            self._proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)  # its own group: perf and its cat
            self._proc.wait()

    def close(self) -> None:
        """Stop and reap perf, remove its data. Idempotent; safe after a failed start."""
        try:
            self._stop()
        finally:
            for name in ("_ctl_w", "_ack_r"):
                fd = getattr(self, name)
                if fd >= 0:
                    os.close(fd)
                    setattr(self, name, -1)
            if self._proc is not None and self._proc.stderr is not None:
                self._proc.stderr.close()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            self._unmount_what_perf_mounted()

    def _unmount_what_perf_mounted(self) -> None:
        """Leave tracefs as found: perf mounts it where it was not mounted; unmount that."""
        if self._mounts is None or (self._proc is not None and self._proc.returncode is None):
            return
        for target in (m for m in tracefs_mounts() if m not in self._mounts):
            libc.umount2(target.encode(), 0)  # best effort: busy means someone else uses it
        self._mounts = None
