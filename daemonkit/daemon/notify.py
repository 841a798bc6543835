"""sd_notify(3), written out: how a service tells systemd it is ready, reloading or stopping.

The protocol is one datagram per message on an ``AF_UNIX``/``SOCK_DGRAM`` socket whose address
systemd passes in ``$NOTIFY_SOCKET``: a file path, or an abstract-namespace name written with a
leading ``@`` (the kernel spells it with a leading NUL byte and it has no file). Each datagram is
``KEY=VALUE`` lines; systemd reads the sender's pid from the socket's credentials (SCM_CREDENTIALS)
to decide whether the message comes from the main process (``NotifyAccess=main``).

Messages this daemon sends:

* ``READY=1`` + ``STATUS=...``: initialization is complete (``Type=notify`` units wait for it);
* ``RELOADING=1`` + ``MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>`` when a reload begins, then
  ``READY=1`` when it is done (``Type=notify-reload`` requires the timestamp);
* ``STOPPING=1`` when shutdown begins;
* ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC`` when the unit sets ``WatchdogSec=`` (and
  ``$WATCHDOG_PID``, if set, is our pid); systemd kills a service that misses the deadline;
* ``MAINPID=<pid>`` when a process that systemd started forks the real daemon.

Without ``$NOTIFY_SOCKET`` every call does nothing, silently: the daemon then runs outside
systemd, and that is not an error.

Kernel path: socket(2) ``AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC`` once, then one sendto(2) per message;
the datagram is copied into the receiver's socket queue (or fails at once if the queue is full).

Lifetime: the socket is process-local and closed by :meth:`Notifier.close`; the address belongs
to systemd.

See also: sd_notify(3), systemd.service(5) Type=notify and WatchdogSec=, unix(7).
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["Notifier"]


class Notifier:
    """Sends sd_notify messages to ``$NOTIFY_SOCKET``; does nothing when it is unset."""

    _sock: socket.socket | None = None

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        addr = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: the kernel's name starts with a NUL byte.
        self.address: str | None = ("\0" + addr[1:] if addr.startswith("@") else addr) or None
        self.watchdog_usec = self._watchdog_usec(env)

    @staticmethod
    def _watchdog_usec(env: dict[str, str]) -> int | None:
        try:
            usec = int(env.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        wd_pid = env.get("WATCHDOG_PID")
        if wd_pid is not None and wd_pid != str(os.getpid()):
            return None  # the watchdog is meant for another process (e.g. our starter)
        return usec if usec > 0 else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings: half the deadline, as sd_watchdog_enabled(3) says."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def send(self, **fields: str | int) -> None:
        """Send one datagram of ``KEY=VALUE`` lines (e.g. ``send(READY=1, STATUS="up")``)."""
        if self.address is None:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        msg = "".join(f"{key}={value}\n" for key, value in fields.items())
        self._sock.sendto(msg.encode(), self.address)

    def ready(self, status: str) -> None:
        self.send(READY=1, STATUS=status)

    def reloading(self) -> None:
        # The timestamp lets systemd tell this reload from an earlier one (notify-reload).
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> None:
        self.send(STOPPING=1)

    def watchdog(self) -> None:
        self.send(WATCHDOG=1)

    def mainpid(self, pid: int) -> None:
        self.send(MAINPID=pid)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
