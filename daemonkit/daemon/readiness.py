"""The readiness pipe: how a daemon tells the process that started it "ready" or why not.

daemon(7) step 14: the original process must not exit before the daemon is really serving,
or a script that runs ``daemonkit start && daemonkit status`` races the daemon's
initialization; and when initialization fails, the reason must reach the terminal the user
is looking at, not the daemon's /dev/null. A pipe made *before the first fork* is shared by the
starter (read end) and, after two forks, by the daemon (write end):

* the daemon writes ``{"pid": N}`` as soon as it exists (so the starter can kill it on timeout),
  ``{"step": "pidfile"}`` once its pidfile is locked, then exactly one of ``{"ready": true}``
  or ``{"error": "...", "exit_code": N}``;
* each message carries ``"t"``, the daemon's ``CLOCK_MONOTONIC`` when it happened. That clock
  is one for the whole machine, so the starter subtracts its own reading taken just before
  the first fork and gets fork-to-pid, fork-to-pidfile and fork-to-ready latencies without
  counting the pipe's wake-up;
* every other process closes its copy of the write end, so when the daemon dies without a word
  the starter reads end-of-file instead of waiting for ever.

Kernel path: pipe2(2) ``O_CLOEXEC``, a few small write(2)s (each below ``PIPE_BUF``, so atomic),
poll(2) with a deadline on the starter side.

Lifetime: process-persistent; the daemon closes its end once it has reported.

See also: pipe(7), poll(2), daemon(7) "SysV Daemons" step 14.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "ReadinessPipe"]


@dataclass
class Outcome:
    """What the starter learnt: the daemon's pid (if it got that far) and how it ended."""

    pid: int | None = None
    ready: bool = False
    error: str | None = None  # the daemon's own one-line message
    exit_code: int = 1
    timed_out: bool = False
    stamps: dict[str, float] = field(default_factory=dict)  # "pid", "pidfile", "ready" -> t


class ReadinessPipe:
    """Both ends of the pipe; after the fork each side keeps the end it uses."""

    def __init__(self) -> None:
        self.rfd, self.wfd = os.pipe2(os.O_CLOEXEC)

    # -- the daemon's side

    def keep_write_end(self) -> None:
        """In the daemon (and the intermediate child): the read end belongs to the starter."""
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1

    def _say(self, msg: dict[str, Any]) -> None:
        if self.wfd >= 0:
            msg["t"] = time.monotonic()
            with contextlib.suppress(BrokenPipeError):  # starter gone (killed): nobody to tell
                os.write(self.wfd, json.dumps(msg).encode() + b"\n")

    def announce_pid(self, pid: int) -> None:
        self._say({"pid": pid})

    def mark(self, step: str) -> None:
        """A step done (e.g. ``pidfile``): timed, so the starter can show what each one costs."""
        self._say({"step": step})

    def report_ready(self) -> None:
        self._say({"ready": True})
        self.close_write_end()

    def report_error(self, message: str, exit_code: int) -> None:
        self._say({"error": message, "exit_code": exit_code})
        self.close_write_end()

    def close_write_end(self) -> None:
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1

    # -- the starter's side

    def wait(self, timeout: float) -> Outcome:
        """In the starter: read reports until ready, error, end-of-file or *timeout* seconds."""
        self.close_write_end()  # otherwise our own copy would keep EOF from ever coming
        out = Outcome()
        buf = b""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.rfd, select.POLLIN)  # POLLHUP comes unasked: then read sees EOF
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not poller.poll(math.ceil(left * 1000)):
                    out.timed_out = True
                    return out
                chunk = os.read(self.rfd, 4096)
                if not chunk:  # every write end closed: the daemon died without a word
                    out.error = out.error or "daemon exited during initialization"
                    return out
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    out.pid = msg.get("pid", out.pid)
                    _stamp(out, msg)
                    if msg.get("ready"):
                        out.ready = True
                        return out
                    if "error" in msg:
                        out.error, out.exit_code = str(msg["error"]), int(msg["exit_code"])
                        return out
        finally:
            os.close(self.rfd)
            self.rfd = -1


def _stamp(out: Outcome, msg: dict[str, Any]) -> None:
    """Record when the stage a message reports happened (the daemon's monotonic clock)."""
    what = "pid" if "pid" in msg else "ready" if msg.get("ready") else msg.get("step")
    if what and "t" in msg:
        out.stamps[str(what)] = float(msg["t"])
