"""The interface every echo endpoint of the daemon implements, and its per-client counters.

Kernel path and lifetime: see each endpoint module. Counters are kept per client session by
the one thread that serves it (no lock on the hot path) and summed when ``status`` asks.

See also: :mod:`daemonkit.service.endpoints`.
"""

from __future__ import annotations

import os
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from daemonkit.channels.base import End
from daemonkit.errors import ChannelError
from daemonkit.runtime import object_name
from daemonkit.service.trust import TrustedDir

__all__ = ["ECHO_SIGNALS", "ClientEnd", "Endpoint", "Session", "start_thread"]

# Signals the `signal` endpoint takes with sigwaitinfo(2). Every thread of the daemon other than
# the main one starts with them blocked (see start_thread), so that once the main thread blocks
# them too, a process-directed one can only be taken by sigwaitinfo.
ECHO_SIGNALS = {signal.SIGUSR1}


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread whose signal mask blocks ECHO_SIGNALS (a new thread inherits
    its creator's mask, so block, start, and restore the main thread's).

    Raises :class:`~daemonkit.errors.ChannelError` when the kernel refuses the thread: the
    caller refuses the client it was for and removes what it made for it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, ECHO_SIGNALS)
    try:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
    except RuntimeError as exc:  # pthread_create: EAGAIN (RLIMIT_NPROC, cgroup pids.max)
        raise ChannelError(name, f"cannot start a thread ({exc})") from exc
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return thread


class ClientEnd:
    """Mixin for the client ends: closing one also closes the control connection that keeps
    the daemon's per-client objects alive (set by :func:`daemonkit.service.client.open_endpoint`).
    """

    on_closed: Callable[[], None] | None = None

    def _release_control(self) -> None:
        if self.on_closed is not None:
            self.on_closed()


class Session:
    """One client's use of an endpoint: its echo count, written only by its serving thread."""

    def __init__(self) -> None:
        self.echoes = 0
        self.open = True


class Endpoint(ABC):
    """One echo mechanism served by the daemon, and (:meth:`client_end`) its client's side."""

    name: ClassVar[str]  # the name in the registry, the config and ``bench --target daemon``
    payload: ClassVar[bool] = True  # False: a notification; the client end is a NotifyEnd
    passes_fd: ClassVar[bool] = False  # True: the open reply carries a descriptor

    def __init__(self, runtime_dir: Path, held_dir: Path | None = None) -> None:
        self.runtime_dir = runtime_dir  # the name clients know it by: in replies
        # Where the daemon makes and removes its files: the directory it holds open
        # (/proc/self/fd/N, see Service.init), so a renamed ancestor cannot redirect them.
        self.held_dir = runtime_dir if held_dir is None else held_dir
        self._sessions: list[Session] = []
        self._closed_echoes = 0
        self._lock = threading.Lock()  # guards the session list, never the echo loop

    def object_name(self, posix: bool = False) -> str:
        """A fresh name ``dk.PID.KIND.N`` owned by the daemon (``/dk...`` for POSIX IPC)."""
        return object_name(self.name, posix=posix)

    def new_session(self) -> Session:
        session = Session()
        with self._lock:
            self._sessions.append(session)
        return session

    def end_session(self, session: Session) -> None:
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)
                self._closed_echoes += session.echoes
                session.open = False

    def counters(self) -> dict[str, Any]:
        with self._lock:
            live = sum(s.echoes for s in self._sessions)
            return {"echoes": self._closed_echoes + live, "clients": len(self._sessions)}

    @staticmethod
    @abstractmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        """In the client: its end, from the daemon's reply to its ``open`` request.

        Every field is checked before use (see :mod:`daemonkit.service.trust`): a name must be
        the daemon's (*daemon_pid*) own in its runtime dir *rdir*, of the right type and owner;
        a signal target the daemon itself. A field that fails is an
        :class:`~daemonkit.service.trust.UntrustedError` and nothing has been touched;
        :class:`~daemonkit.errors.ChannelError` when the end cannot be opened.
        """

    @staticmethod
    def client_end_with_fd(
        reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int, fd: int
    ) -> End:
        """As :meth:`client_end`, for an endpoint that ``passes_fd``: *fd* came with the
        reply (SCM_RIGHTS) and is the caller's to close, or the end's once it is made."""
        os.close(fd)
        raise NotImplementedError("this endpoint passes no descriptor")

    @abstractmethod
    def start(self) -> None:
        """Make the endpoint's shared objects and threads."""

    @abstractmethod
    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        """Answer an ``open`` request from *client_pid* (the kernel's SO_PEERCRED of the
        control connection): the reply, and the function releasing what it made."""

    @abstractmethod
    def stop(self) -> None:
        """Remove every kernel object the endpoint made; wake and end its threads."""
