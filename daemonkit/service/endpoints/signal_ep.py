"""``signal``: the client sends SIGUSR1 to the daemon; the daemon sends SIGUSR1 back to the
sender, whose pid it reads from the siginfo that sigwaitinfo(2) returns. A notification: no
payload moves, the peer learns only *that* the other side signalled.

Kernel path: kill(2) queues the signal on the daemon (process-directed); a thread blocked in
rt_sigtimedwait(2) (``signal.sigwaitinfo``) dequeues it with its ``siginfo_t``, where the
kernel wrote the sender's pid (``si_pid``) and uid; tgkill(2) back to that pid, directed at
the client thread that waits (its id was given at ``open``); the client takes the reply with
sigwaitinfo too. No handler runs on either side.

Why the reply is thread-directed: a process-directed signal may be delivered to any thread
that does not block it, and a client process may have threads it did not make (pyzmq starts a
garbage-collector thread for zero-copy sends). There the reply would hit SIGUSR1's default
action and kill the client. tgkill(2) queues it on the waiting thread alone.

Facts about taking a signal with sigwaitinfo in one thread:

* A process-directed signal goes to *any* thread that does not block it. So every thread of
  the daemon must block SIGUSR1 while a client is attached: the worker threads are all
  started with it blocked (:func:`~daemonkit.service.endpoints.base.start_thread`), and the
  main thread blocks it on ``open`` and unblocks it when the last client goes, so outside a
  benchmark its SigBlk in /proc is empty. When no client is attached SIGUSR1 is ignored.
* Standard signals do not queue: two SIGUSR1 sent at the same instant by two clients become
  one delivery with one ``si_pid``, and one client would wait for ever. So one client at a
  time; a second ``open`` is refused until the first closes.
* Only the attached client is answered; its pid comes from the control connection's peer
  credentials (``SO_PEERCRED``), which the kernel fills in, not from the request.

Lifetime: nothing to remove. The attachment ends when the client's control connection closes.

See also: signal(7), sigwaitinfo(2), kill(2), tgkill(2), pthread_sigmask(3), unix(7) SO_PEERCRED.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from daemonkit.channels.base import End, NotifyEnd
from daemonkit.channels.signals import tgkill
from daemonkit.errors import ChannelError, PeerDiedError
from daemonkit.service.endpoints.base import (
    ECHO_SIGNALS,
    ClientEnd,
    Endpoint,
    Session,
    start_thread,
)
from daemonkit.service.trust import TrustedDir, UntrustedError

__all__ = ["SignalClientEnd", "SignalEndpoint"]

ECHO_SIGNAL = signal.SIGUSR1
assert {ECHO_SIGNAL} == ECHO_SIGNALS


class SignalEndpoint(Endpoint):
    name = "signal"
    payload = False

    _thread: threading.Thread | None = None

    def start(self) -> None:
        # Until a client attaches, a stray SIGUSR1 must not kill the daemon (default action).
        signal.signal(ECHO_SIGNAL, signal.SIG_IGN)
        self._client: int | None = None
        self._session: Session | None = None
        self._stopping = False

    @staticmethod
    def client_end(reply: dict[str, Any], rdir: TrustedDir, daemon_pid: int) -> End:
        what = "signal reply"
        target, signum = reply.get("pid"), reply.get("signal")
        if type(target) is not int or target != daemon_pid:
            raise UntrustedError(
                f"{what}: signal target {target!r} is not the daemon (pid {daemon_pid})"
            )
        if type(signum) is not int or signum != ECHO_SIGNAL:
            raise UntrustedError(f"{what}: signal {signum!r} is not {ECHO_SIGNAL.name}")
        return SignalClientEnd(target, signum)

    def open_for_client(
        self, req: dict[str, Any], client_pid: int
    ) -> tuple[dict[str, Any], Callable[[], None]]:
        client = client_pid
        tid = req.get("tid")
        if not isinstance(tid, int) or not os.path.exists(f"/proc/{client}/task/{tid}"):
            return {"error": f"signal: 'tid' must name a thread of pid {client}"}, lambda: None
        try:
            os.kill(client, 0)  # signal 0: only the permission check (kill(2))
        except PermissionError:
            return {
                "error": f"signal: pid {client} is another user's: the daemon may not signal it"
            }, lambda: None
        if self._client is not None:
            return {
                "error": f"signal: busy with pid {self._client} (standard signals do not "
                "queue: one client at a time)"
            }, lambda: None
        # Main thread: block first, so no SIGUSR1 can reach a handler-less disposition.
        signal.pthread_sigmask(signal.SIG_BLOCK, ECHO_SIGNALS)
        self._client = client
        self._tid = tid
        self._session = session = self.new_session()
        if self._thread is None:
            try:
                self._thread = start_thread(self._serve, f"{self.name}-sigwait")
            except ChannelError:  # no thread: detach again, as release() would
                self.end_session(session)
                self._client = self._session = None
                signal.pthread_sigmask(signal.SIG_UNBLOCK, ECHO_SIGNALS)
                raise

        def release() -> None:
            self.end_session(session)
            if self._client == client:
                self._client = None
                self._session = None
                signal.pthread_sigmask(signal.SIG_UNBLOCK, ECHO_SIGNALS)  # SigBlk empty again

        return {"pid": os.getpid(), "signal": int(ECHO_SIGNAL)}, release

    def _serve(self) -> None:
        me = os.getpid()
        while True:
            info = signal.sigwaitinfo(ECHO_SIGNALS)
            if info.si_pid == me and self._stopping:
                return  # stop() woke us
            session, client, tid = self._session, self._client, self._tid
            if session is None or info.si_pid != client:
                continue  # not our attached client: no reply
            # ProcessLookupError: it died, its release follows; PermissionError: its user
            # changed (setuid) since it attached. Either way no reply, and the thread goes on.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                tgkill(info.si_pid, tid, ECHO_SIGNAL)
                session.echoes += 1

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None and self._thread.ident is not None:
            signal.pthread_kill(self._thread.ident, ECHO_SIGNAL)  # thread-directed: ends the wait
            self._thread.join(1.0)
            self._thread = None


class SignalClientEnd(NotifyEnd, ClientEnd):
    """Posts SIGUSR1 to the daemon and waits for SIGUSR1 from it, with sigwaitinfo.

    Must be used by the thread that opened it: SIGUSR1 is blocked in that thread while the end
    is open, and the daemon directs its replies at that thread.
    """

    def __init__(self, daemon_pid: int, signum: int) -> None:
        self._pid = daemon_pid
        self._sig = signal.Signals(signum)
        self._sigset = {self._sig}
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, self._sigset)

    def post(self) -> None:
        try:
            os.kill(self._pid, self._sig)
        except ProcessLookupError as exc:
            raise PeerDiedError("signal", f"daemon pid {self._pid} is gone") from exc

    def wait(self) -> None:
        sigwaitinfo = signal.sigwaitinfo
        while sigwaitinfo(self._sigset).si_pid != self._pid:
            pass  # someone else's SIGUSR1: not the reply

    def _close(self) -> None:
        try:
            # A reply still pending would fire on unblock (default action: terminate).
            while signal.sigtimedwait(self._sigset, 0) is not None:
                pass
        except OSError as exc:
            raise ChannelError("signal", f"sigtimedwait: {exc.strerror}") from exc
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
            self._release_control()
