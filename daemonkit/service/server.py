"""The demo daemon's life after daemonization: init, the main loop, reload, graceful stop.

The same :class:`Service` runs under both ``daemonkit start`` (after the daemonizer's steps)
and ``daemonkit run`` (in the foreground, for systemd ``Type=notify``).

Facts about signals here:

* Handlers only *record*: the C-level handler writes the signal number into a non-blocking
  pipe registered with :func:`signal.set_wakeup_fd`, the Python-level handler does nothing.
  The main loop sees the pipe readable in the same ``epoll_wait`` as its sockets and acts
  there, outside any handler, where it may take locks, allocate and log safely.
* SIGTERM/SIGINT: graceful stop (stop accepting, write queued replies, STOPPING=1, remove the
  endpoints' kernel objects, the control socket, and the pidfile if it still holds our pid).
  The loop never sleeps longer than 0.5 s, and the signal wakes it at once anyway.
* SIGHUP: reload the configuration and reopen the log file (after a logrotate rename, new
  lines go to the new file). A bad configuration is logged and the old one kept.
* SIGPIPE is ignored: a client that disconnects mid-reply gives EPIPE, not our death.

Facts about a control client at the descriptor limit: connect(2) returns as soon as the
connection is queued, before accept(2); at ``RLIMIT_NOFILE`` accept(2) fails with ``EMFILE``
and the connection waits in the queue, its request unread. So the daemon holds one spare
descriptor (``/dev/null``): at ``EMFILE``/``ENFILE`` it closes the spare, accepts the first
queued client with the slot, answers ``{"error": "daemon: out of descriptors (EMFILE)"}``
without reading its request, closes it and takes the spare back, so a client hears why
instead of waiting out its timeout. A limit set below what the daemon already holds leaves no
slot even then: the listener backs off (:mod:`daemonkit.backoff`) and the client's timeout
ends its wait.

Kernel path: socket(2)/fchmod(2)/bind(2)/listen(2) for ``control.sock`` (0600 from its
creation, see :mod:`daemonkit.channels.socket_file`), epoll_wait(2), pipe2(2) for the wakeup fd,
open(2)/close(2) of the spare descriptor, shutdown(2) of a client refused at the limit,
dup2(2) to reopen the log, sendto(2) for sd_notify.

Lifetime: ``control.sock`` and the endpoints' objects are removed by :meth:`Service.stop`;
after SIGKILL they stay (``daemonkit cleanup`` and the next start's pidfile take-over handle it).

See also: signal(7), signal.set_wakeup_fd, unix(7), epoll(7), sd_notify(3).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daemonkit import __version__
from daemonkit.backoff import AcceptBackoff
from daemonkit.channels.socket_file import listen_private
from daemonkit.daemon.notify import Notifier
from daemonkit.daemon.pidfile import Pidfile
from daemonkit.daemon.steps import open_log
from daemonkit.errors import DaemonkitError, DaemonStartError
from daemonkit.interrupts import SignalPipe
from daemonkit.runtime import owner_of_name, pid_alive
from daemonkit.service.config import Config, load_config
from daemonkit.service.control import (
    CONTROL_SOCKET,
    MAX_REQUEST,
    Connection,
    ProtocolError,
    parse_request,
)
from daemonkit.service.endpoints import Endpoint, make_endpoints
from daemonkit.service.limits import LIMITS, budgets
from daemonkit.service.log import log, log_stats
from daemonkit.service.trust import TrustedDir

__all__ = ["CONTROL_SOCKET", "Service", "ServiceOptions"]

_TICK = 0.5  # longest sleep of the main loop: idle checks and the 1 s stop promise


@dataclass(frozen=True)
class ServiceOptions:
    runtime_dir: Path
    config: Path | None
    backend: str  # native, python-daemon, foreground
    log_file: Path | None


class Service:
    """The demo daemon: a control socket plus the echo endpoints, driven by one main loop."""

    def __init__(self, opts: ServiceOptions) -> None:
        # Nothing here touches the kernel: ``daemonkit start`` builds the service before the
        # daemonizer's forks (whose step 1 closes every inherited descriptor); init() runs in
        # the daemon. It implements :class:`daemonkit.daemon.steps.Service`.
        self.opts = opts

    @property
    def control_path(self) -> Path:
        return self.opts.runtime_dir / CONTROL_SOCKET

    @property
    def held_dir(self) -> Path:
        """The runtime dir as the daemon reaches it: through the descriptor it holds."""
        return self._dir.held if self._dir is not None else self.opts.runtime_dir

    # -- initialization ---------------------------------------------------------------------

    def init(self, pidfile: Pidfile | None) -> None:
        """Config, signals, control socket, endpoints. On failure undo (releasing *pidfile*,
        which the service owns from here on) and raise."""
        self.pidfile = pidfile
        self.notifier = Notifier()  # $NOTIFY_SOCKET and $WATCHDOG_PID as the daemon sees them
        self.config = Config()
        self.started = time.monotonic()
        self.first_accept: float | None = None  # monotonic: when the first client was accepted
        self.reloads = 0
        self.counters = {"requests": 0, "errors": 0}
        self.endpoints: dict[str, Endpoint] = {}
        self.test_hooks = os.environ.get("DAEMONKIT_TEST_HOOKS") == "1"
        self._watchdog_on = self.notifier.watchdog_interval is not None
        self._sel = selectors.DefaultSelector()  # epoll_create1(2)
        self._conns: set[Connection] = set()
        self._listener: socket.socket | None = None
        self._signals: SignalPipe | None = None
        self._stop_requested = False
        self._stopped = False
        self._dir: TrustedDir | None = None  # the runtime dir, held open (see init)
        self._backoff = AcceptBackoff()
        self._accept_resume: float | None = None  # listener paused after EMFILE & co. until
        self._refused_clients = 0  # connections closed at once: over a control_clients limit
        self._spare = -1  # given up at EMFILE to answer one queued client (see above)
        self._out_of_fds = 0  # clients answered "out of descriptors"
        try:
            self.config = load_config(self.opts.config)
            if self.config.init_delay:
                time.sleep(self.config.init_delay)  # a deliberately slow start, see config.py
            self._install_signal_handlers()
            self._hold_runtime_dir()
            self._remove_leftovers()
            self._listen()
            self._take_spare()
            self.endpoints = make_endpoints(
                self.config.endpoints, self.opts.runtime_dir, self.held_dir
            )
            for name, ep in self.endpoints.items():
                try:
                    ep.start()  # threads, if any, start here: after the last fork
                except OSError as exc:
                    raise DaemonStartError(f"endpoint {name}: {exc.strerror}") from exc
            failed = log(
                f"ready (backend {self.opts.backend}, runtime dir {self.opts.runtime_dir})"
            )
            if failed is not None and self.opts.log_file is not None:
                # Later lines that fail are counted; a log that takes nothing at start is a
                # configuration error, and the starter hears why (see service/log.py).
                raise DaemonStartError(f"log file {self.opts.log_file}: {failed.strerror}")
        except BaseException:
            self.stop()
            raise

    def _install_signal_handlers(self) -> None:
        self._signals = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self._sel.register(self._signals.fd, selectors.EVENT_READ, self._on_signal)

    def _hold_runtime_dir(self) -> None:
        """Open the runtime dir once (``O_PATH|O_DIRECTORY|O_NOFOLLOW``) and do everything in
        it through that descriptor from here on (``/proc/self/fd/N/NAME``: bind(2),
        mkfifo(3), unlink(2)). An ancestor renamed away and replaced, even by a symlink to
        another directory, then changes nothing the daemon makes or removes."""
        try:
            self._dir = TrustedDir(self.opts.runtime_dir, ancestors=False)
        except (OSError, DaemonkitError) as exc:
            raise DaemonStartError(f"runtime dir {self.opts.runtime_dir}: {exc}") from exc
        if self.pidfile is not None and self.pidfile.path.parent == self.opts.runtime_dir:
            self.pidfile.path = self.held_dir / self.pidfile.path.name  # removed the same way

    def _remove_leftovers(self) -> None:
        """Sockets and FIFOs a killed predecessor left in the runtime dir (we hold the lock,
        so their owner is dead); its shared memory is ``daemonkit cleanup``'s job."""
        for entry in os.listdir(self.held_dir):
            owner = owner_of_name(entry)
            if owner is not None and owner != os.getpid() and not pid_alive(owner):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.held_dir / entry)
                log(f"removed {entry}, left by pid {owner}")

    def _listen(self) -> None:
        path = self.held_dir / CONTROL_SOCKET
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # we hold the pidfile lock: a socket file here is a dead one's
        try:
            sock = listen_private(path, 16)  # the file is 0600 from its creation
        except OSError as exc:
            raise DaemonStartError(f"control socket {path}: {exc.strerror}") from exc
        sock.setblocking(False)
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ, self._on_accept)

    # -- the main loop ----------------------------------------------------------------------

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit code (0 after a graceful stop)."""
        status = self.status_line()
        if self.opts.backend != "foreground" and self.notifier.enabled:
            self.notifier.mainpid(os.getpid())  # we forked: tell systemd who the main pid is
        self.notifier.ready(status)
        next_ping = time.monotonic()
        try:
            while not self._stop_requested:
                now = time.monotonic()
                interval = self.notifier.watchdog_interval
                if self._watchdog_on and interval is not None and now >= next_ping:
                    self.notifier.watchdog()
                    next_ping = now + interval
                wait = _TICK if not self._watchdog_on else max(0.0, min(_TICK, next_ping - now))
                if self._accept_resume is not None:
                    wait = max(0.0, min(wait, self._accept_resume - now))
                for key, mask in self._sel.select(wait):
                    key.data(key.fileobj, mask)
                self._resume_accept()
                self._drop_idle()
        finally:
            self.stop()
        return 0

    def _on_signal(self, fileobj: Any, mask: int) -> None:
        assert self._signals is not None
        for signum in self._signals.read():
            if signum in (signal.SIGTERM, signal.SIGINT):
                log(f"{signum.name}: stopping")
                self._stop_requested = True
            elif signum == signal.SIGHUP:
                log("SIGHUP: reloading")
                self.reload()

    def _on_accept(self, fileobj: Any, mask: int) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE) and self._answer_out_of_fds(exc):
                return
            delay = self._backoff.failed(exc)
            if delay is None:
                raise
            if delay:  # the connection stays queued: stop watching the listener a while
                if self._backoff.new_streak:
                    log(f"accept: {exc.strerror}; backing off, clients wait in the queue")
                self._sel.unregister(self._listener)
                self._accept_resume = time.monotonic() + delay
            return
        self._backoff.succeeded()
        if not self._admit(sock):
            return
        if self.first_accept is None:
            self.first_accept = time.monotonic()
        sock.setblocking(False)
        conn = Connection(sock)
        self._conns.add(conn)
        self._sel.register(sock, selectors.EVENT_READ, self._on_conn_event(conn))

    def _take_spare(self) -> None:
        if self._spare < 0:
            with contextlib.suppress(OSError):  # still at the limit: taken at the next try
                self._spare = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def _answer_out_of_fds(self, exc: OSError) -> bool:
        """Accept one queued client in the spare's slot, tell it why, close it. False when
        there is no slot even so (no spare, or a limit below what the daemon holds)."""
        assert self._listener is not None
        if self._spare < 0:
            self._take_spare()  # a limit raised since: the spare first, the client next time
            return False
        os.close(self._spare)
        self._spare = -1
        try:
            sock, _ = self._listener.accept()
        except OSError:
            self._take_spare()
            return False
        with sock, contextlib.suppress(OSError):
            sock.setblocking(False)  # a fresh socket's buffer takes the line at once
            name = errno.errorcode.get(exc.errno or 0, "?")
            sock.send(b'{"error": "daemon: out of descriptors (%s)"}\n' % name.encode())
            sock.shutdown(socket.SHUT_WR)  # end-of-file after the line
        self._out_of_fds += 1
        self._take_spare()
        return True

    def _resume_accept(self) -> None:
        if self._accept_resume is not None and time.monotonic() >= self._accept_resume:
            self._accept_resume = None
            if self._listener is not None:
                self._sel.register(self._listener, selectors.EVENT_READ, self._on_accept)

    def _admit(self, sock: socket.socket) -> bool:
        """Close *sock* at once if the daemon, or the connecting user, is at its limit."""
        try:
            uid = Connection.credentials(sock)[1]
        except OSError:
            sock.close()
            return False
        same_user = sum(1 for c in self._conns if c.peer_uid == uid)
        if (
            len(self._conns) >= LIMITS.control_clients
            or same_user >= LIMITS.control_clients_per_uid
        ):
            self._refused_clients += 1
            sock.close()  # the client reads end-of-file: "the daemon closed the connection"
            return False
        return True

    def _on_conn_event(self, conn: Connection) -> Any:
        def on_event(fileobj: Any, mask: int) -> None:
            alive = True
            if mask & selectors.EVENT_READ and not conn.closing:
                alive = conn.receive(lambda line: self.handle(line, conn), self._too_large)
            if alive:
                alive = conn.flush()
            if not alive or (conn.closing and not conn.outbuf):
                self._close_conn(conn)
                return
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
            self._sel.modify(conn.sock, want, on_event)

        return on_event

    def _close_conn(self, conn: Connection) -> None:
        self._sel.unregister(conn.sock)
        self._conns.discard(conn)
        conn.close()  # also releases the endpoint objects this client opened

    def _drop_idle(self) -> None:
        limit = time.monotonic() - self.config.idle_timeout
        for conn in [c for c in self._conns if c.last_active < limit and not c.on_close]:
            self._close_conn(conn)

    # -- requests ---------------------------------------------------------------------------

    def handle(self, line: bytes, conn: Connection) -> dict[str, Any]:
        """One request, one reply; errors become ``{"error": ...}`` and serving goes on."""
        self.counters["requests"] += 1
        try:
            req = parse_request(line)
            reply = self._dispatch(req, conn)
        except ProtocolError as exc:
            reply = {"error": str(exc)}
        except DaemonkitError as exc:
            reply = {"error": str(exc)}
        except Exception as exc:  # a bug met by one client's request must not end the daemon
            log(f"internal error on {line[:80]!r}: {traceback.format_exc()}")
            reply = {"error": f"internal error: {type(exc).__name__}"}
        if "error" in reply:
            self.counters["errors"] += 1
        return reply

    def _too_large(self) -> dict[str, Any]:
        self.counters["requests"] += 1
        self.counters["errors"] += 1
        return {"error": f"request larger than {MAX_REQUEST} bytes"}

    def _dispatch(self, req: dict[str, Any], conn: Connection) -> dict[str, Any]:
        cmd = req["cmd"]
        if cmd == "ping":
            return {"pong": True, "pid": os.getpid()}
        if cmd == "status":
            return self.status()
        if cmd == "reload":
            err = self.reload()
            return {"error": err} if err else {"ok": True, "reloads": self.reloads}
        if cmd == "open":
            name = req.get("endpoint")
            ep = self.endpoints.get(name) if isinstance(name, str) else None
            if ep is None:
                return {"error": f"no endpoint {name!r} (serving: {', '.join(self.endpoints)})"}
            if len(conn.on_close) >= LIMITS.sessions_per_client:
                return {"error": f"limit: {LIMITS.sessions_per_client} sessions per client"}
            reply, release = ep.open_for_client(req, conn.peer_pid)
            conn.on_close.append(release)  # the objects live as long as this connection
            return reply
        if cmd == "test-stop-watchdog":
            if not self.test_hooks:
                return {"error": "test hooks are disabled (DAEMONKIT_TEST_HOOKS is not 1)"}
            self._watchdog_on = False
            return {"ok": True}
        return {"error": f"unknown command {cmd!r}"}

    def status(self) -> dict[str, Any]:
        endpoints: dict[str, Any] = {"control": {**self.counters, "clients": len(self._conns)}}
        endpoints.update({name: ep.counters() for name, ep in self.endpoints.items()})
        return {
            "pid": os.getpid(),
            "name": self.config.name,
            "version": __version__,
            "backend": self.opts.backend,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "first_accept_monotonic": self.first_accept,
            "runtime_dir": str(self.opts.runtime_dir),
            "config": str(self.opts.config) if self.opts.config else None,
            "config_values": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()
            },
            "reloads": self.reloads,
            "log_file": str(self.opts.log_file) if self.opts.log_file else None,
            "log": log_stats.as_dict(),
            "limits": {
                **LIMITS.as_dict(),
                "accept_backoffs": self._backoff.as_dict(),
                "control_clients_refused": self._refused_clients,
                "control_clients_out_of_fds": self._out_of_fds,
                **budgets(),
            },
            "endpoints": endpoints,
        }

    def status_line(self) -> str:
        return f"{self.config.name}: serving {len(self.endpoints)} endpoints on {self.control_path}"

    # -- reload and stop --------------------------------------------------------------------

    def reload(self) -> str | None:
        """Re-read the config and reopen the log; return the error message, if any."""
        self.notifier.reloading()
        error = None
        try:
            self.config = load_config(self.opts.config)
            self.reloads += 1
        except DaemonkitError as exc:
            error = f"reload failed, keeping the old configuration: {exc}"
        self._reopen_log()  # after a rename by logrotate, lines go to the new file from here
        log(error or f"reloaded configuration ({self.config.name})")
        self.notifier.ready(self.status_line())
        return error

    def _reopen_log(self) -> None:
        if self.opts.log_file is None:
            return
        try:
            fd = open_log(self.opts.log_file)
        except DaemonkitError as exc:
            log(f"cannot reopen the log, keeping the old one: {exc}")
            return
        os.dup2(fd, 1)  # 1 and 2 now refer to the new file; the old one is closed by dup2
        os.dup2(fd, 2)
        os.close(fd)

    def stop(self) -> None:
        """Graceful stop: everything init made is removed. Idempotent, safe after a failed init."""
        if self._stopped:
            return
        self._stopped = True
        self.notifier.stopping()
        if self._listener is not None:
            if self._accept_resume is None:  # else it is paused, not registered (back-off)
                self._sel.unregister(self._listener)
            self._listener.close()  # no new clients from here on
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.held_dir / CONTROL_SOCKET)
        for conn in list(self._conns):
            conn.sock.setblocking(True)
            conn.sock.settimeout(0.1)  # finish in-flight replies, but never hang the stop
            with contextlib.suppress(OSError):
                conn.sock.sendall(conn.outbuf)
            conn.outbuf.clear()
            self._close_conn(conn)
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1
        for ep in self.endpoints.values():
            ep.stop()  # removes FIFOs, sockets, shared memory and semaphores it made
        if self._signals is not None:
            self._signals.close(restore=False)  # the daemon exits next: a late SIGTERM is moot
            self._signals = None
        self._sel.close()
        if self.pidfile is not None:
            self.pidfile.release()  # removed only if it still holds our pid
        if self._dir is not None:
            self._dir.close()  # last: everything in the directory is gone by now
        log("stopped")
        self.notifier.close()
