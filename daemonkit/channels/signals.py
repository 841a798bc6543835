"""``signal`` and ``rt-signal``: a signal each way, taken synchronously with ``sigwaitinfo``.

Notification only: a signal carries no payload here (``payload = False``). The receiver learns
that the peer posted, and from the ``siginfo_t`` the kernel fills in, *who* posted (``si_pid``).

Kernel path: ``kill(2)`` to a forked peer (its only thread), ``tgkill(2)`` back to the client's
own thread (directly, or via ``pthread_kill(3)`` for a thread peer) marks the signal pending on
the target and wakes a thread blocked in ``sigwaitinfo(2)``, which
dequeues it and returns its ``siginfo_t``. No handler runs and no bytes are copied. The signal
is *blocked* (``pthread_sigmask(2)``) in the waiting threads the whole time: a blocked signal
stays pending until ``sigwaitinfo`` takes it, so no handler is installed (the disposition is
left as it was) and the default action (terminate) cannot fire while the channel is open.

Facts about signals as a channel:

* Standard signals coalesce: the pending set holds one bit per signal, so two ``SIGUSR1``
  sent before the receiver takes the first arrive as one. In ping-pong exactly one is
  outstanding at any time, so nothing is lost; a producer that posts twice would lose one.
  Real-time signals (``SIGRTMIN+n``) queue, one ``siginfo_t`` each, up to
  ``RLIMIT_SIGPENDING``.
* A process-directed signal (``kill``) goes to any one thread that does not block it, and
  with no handler its default action terminates the whole process. So a reply to the client
  is thread-directed (``tgkill`` to the thread that created the channel): the client
  process may have other threads (a timer, a library's helper thread) that do not block
  the signal. The forked peer has a single thread, so ``kill`` reaches it safely.
* The client does not know a forked peer's pid in advance: the server's first act is to
  signal the creator (a "hello"), and the client reads the pid from its ``si_pid``. The
  server likewise replies to the ``si_pid`` of each signal it takes, as a daemon would.
* One channel per signal number per process at a time: two would take each other's signals.

Lifetime: nothing to remove. ``close()`` (in the creating thread, after the peer has stopped)
takes any signal still pending, so unblocking cannot deliver it, then restores the mask.

See also: signal(7), sigwaitinfo(2), pthread_sigmask(3), kill(2), pthread_kill(3).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from typing import ClassVar

from daemonkit._libc import errno_error, libc
from daemonkit.channels.base import Channel, NotifyEnd, PeerKind, Role
from daemonkit.errors import ChannelError, PeerDiedError

__all__ = ["RtSignalChannel", "SignalChannel", "tgkill"]


def tgkill(pid: int, tid: int, sig: int) -> None:
    """Send *sig* to thread *tid* (a kernel thread id) of process *pid*: glibc's tgkill(2)."""
    if libc.tgkill(pid, tid, sig) != 0:
        raise errno_error("tgkill")  # ESRCH: ProcessLookupError, the thread is gone


libc.tgkill.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)


class _SignalEnd(NotifyEnd):
    """Posts with kill/tgkill/pthread_kill to the peer, waits with sigwaitinfo."""

    def __init__(
        self, channel: SignalChannel, peer_pid: int = 0, peer_tid: int = 0, peer_thread: int = 0
    ) -> None:
        self._channel = channel
        self._sigset = {channel.signum}
        self._peer_pid = peer_pid  # process peer: where kill() goes
        self._peer_tid = peer_tid  # and, for the server's replies, the client's thread
        self._peer_thread = peer_thread  # thread peer: where pthread_kill() goes

    def post(self) -> None:
        if not (self._peer_pid or self._peer_thread):  # client, first post: wait for hello
            self._take()
            self._peer_thread = self._channel.server_thread  # set before hello was sent
        try:
            if self._peer_tid:
                tgkill(self._peer_pid, self._peer_tid, self._channel.signum)  # that thread only
            elif self._peer_pid:
                os.kill(self._peer_pid, self._channel.signum)  # pending on the peer process
            else:
                signal.pthread_kill(self._peer_thread, self._channel.signum)  # on one thread
        except ProcessLookupError as exc:
            raise PeerDiedError(self._channel.name, "peer is gone (ESRCH)") from exc

    def wait(self) -> None:
        self._take()

    def _take(self) -> None:
        info = signal.sigwaitinfo(self._sigset)  # sleeps until the signal is pending
        if self._channel.peer == "process":
            self._peer_pid = info.si_pid  # reply to whoever sent it

    def _close(self) -> None:
        pass  # nothing held: the mask is the channel's to restore


class SignalChannel(Channel):
    name = "signal"
    summary = "SIGUSR1 each way, taken with sigwaitinfo(2); standard signals coalesce; no payload"
    payload = False
    signum: ClassVar[int] = signal.SIGUSR1
    signame: ClassVar[str] = "SIGUSR1"
    server_thread = 0  # pthread id of a thread peer, set by the server before its hello

    def __init__(self, peer: PeerKind, max_size: int = 0) -> None:
        super().__init__(peer, max_size)
        self._client_thread = threading.get_ident()
        self._client_tid = threading.get_native_id()  # the kernel's id, for tgkill
        # Blocked from now on in this thread and in every thread or process started from it.
        was_blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {self.signum})
        if self.signum in was_blocked:  # nothing changed: someone here already waits for it
            raise ChannelError(self.name, f"{self.signame} is already blocked in this thread")

    def open(self, role: Role) -> NotifyEnd:
        if role == "client":
            if threading.get_ident() != self._client_thread:
                raise ChannelError(self.name, "open the client end in the creating thread")
            return _SignalEnd(self)
        signal.pthread_sigmask(signal.SIG_BLOCK, {self.signum})  # inherited; made sure
        if self.peer == "thread":
            self.server_thread = threading.get_ident()
            signal.pthread_kill(self._client_thread, self.signum)  # hello
            return _SignalEnd(self, peer_thread=self._client_thread)
        try:  # hello: its si_pid tells the client our pid
            tgkill(self._creator, self._client_tid, self.signum)
        except ProcessLookupError as exc:
            raise PeerDiedError(self.name, "the client process is gone") from exc
        return _SignalEnd(self, peer_pid=self._creator, peer_tid=self._client_tid)

    def _remove(self) -> None:
        if threading.get_ident() != self._client_thread:
            raise ChannelError(self.name, "close the channel in the thread that created it")
        # A hello never answered is still pending: take it, or unblocking would deliver it
        # with the default action (terminate the process).
        while signal.sigtimedwait({self.signum}, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {self.signum})  # only what we blocked


class RtSignalChannel(SignalChannel):
    name = "rt-signal"
    summary = "SIGRTMIN+1 each way, taken with sigwaitinfo(2); real-time signals queue; no payload"
    signum: ClassVar[int] = signal.SIGRTMIN + 1  # glibc keeps the first two for itself
    signame: ClassVar[str] = "SIGRTMIN+1"
