"""Run a channel's server end in a forked process or a thread, and drive it batch by batch.

The peer is a worker in the pyperf manner: it gets commands over a control pipe (``{"n": N}``:
echo N messages; ``{"n": 0}``: finish) and reports back over another (``{"ready": true}``, then
per batch its own context-switch counts, or ``{"error": "..."}``). Control traffic happens
between batches, never inside the timed loop; the channel under test carries only the
round trips.

Facts about a peer that dies or hangs:

* A blocked ``read``/``sem_wait``/``mq_receive`` in the client would wait forever for a peer
  that is gone. While a batch runs, SIGCHLD (a forked peer exited) and SIGALRM (the batch
  overran its time limit) have handlers that raise in the main thread: the blocking call is
  interrupted (EINTR) and the exception unwinds the client, which then cleans up. A thread
  peer that fails sends SIGCHLD to the main thread itself (``pthread_kill``), so both kinds
  of peer fail the same way.
* Between batches those handlers are restored, so nothing else in the process is disturbed.
* Forked peers leave with ``os._exit``: they must not run the parent's ``atexit`` handlers,
  flush its stdio buffers twice, or remove kernel objects the parent owns.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import threading
import time
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from daemonkit._libc import errno_error, libc
from daemonkit.channels._stream import read_rest, write_rest
from daemonkit.channels.base import Channel, NotifyEnd, PayloadEnd, PeerKind, SpinWords
from daemonkit.errors import ChannelError, PeerDiedError
from daemonkit.interrupts import INTERRUPTS

__all__ = [
    "CtxSwitches",
    "Peer",
    "current_cpu",
    "die_with_parent",
    "exact_roundtrips",
    "notify_roundtrips",
    "payload_roundtrips",
    "spin_roundtrips",
    "stream_messages",
    "wire_size",
]


@dataclass(frozen=True)
class CtxSwitches:
    """What the kernel counted for one end: voluntary (blocked, gave up the CPU) and
    involuntary (preempted) context switches and, when known, the CPU time it used, in
    seconds, user and system apart (None: not known, e.g. a remote end)."""

    voluntary: int
    involuntary: int
    user_s: float | None = None
    system_s: float | None = None
    last_cpu: int | None = None  # the CPU the end was last seen on (sched_getcpu(3))
    messages: int | None = None  # how many messages the counts cover, when the end says
    # stream mode: CRC-32 of the last message the end received in the batch, computed after
    # its counts were read (so neither its CPU time nor the client's clock includes it)
    crc32: int | None = None

    @staticmethod
    def of_this_thread() -> CtxSwitches:
        ru = resource.getrusage(resource.RUSAGE_THREAD)  # counted per thread by the kernel
        return CtxSwitches(ru.ru_nvcsw, ru.ru_nivcsw, ru.ru_utime, ru.ru_stime, current_cpu())

    @staticmethod
    def of_this_process() -> CtxSwitches:
        """Every thread of this process: a helper thread's CPU (a queue's feeder) counts."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return CtxSwitches(ru.ru_nvcsw, ru.ru_nivcsw, ru.ru_utime, ru.ru_stime)

    @property
    def cpu_s(self) -> float | None:
        """User plus system time, or None when not known."""
        if self.user_s is None or self.system_s is None:
            return None
        return self.user_s + self.system_s

    def __sub__(self, other: CtxSwitches) -> CtxSwitches:
        return CtxSwitches(
            self.voluntary - other.voluntary,
            self.involuntary - other.involuntary,
            _minus(self.user_s, other.user_s),
            _minus(self.system_s, other.system_s),
            self.last_cpu,
        )


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


# -- the timed loops: nothing in them but the round trip and the two timestamps ----------


def payload_roundtrips(
    end: PayloadEnd,
    msg: memoryview,
    rbuf: memoryview,
    samples: array[int],
    got: array[int],
    starts: array[int] | None = None,
) -> None:
    """Send *msg* and receive the echo into *rbuf*, ``len(samples)`` times.

    Stores each round trip in ns in *samples* and each echoed length in *got*; the caller
    checks lengths and content after the loop. *starts*, if given, gets the instant each
    round trip began (``time.perf_counter_ns``, CLOCK_MONOTONIC), stored after the round
    trip's second timestamp: a trace lines the round trips up with the kernel's events.
    """
    clock = time.perf_counter_ns
    send = end.send
    recv = end.recv_into
    for i in range(len(samples)):
        t0 = clock()
        send(msg)
        got[i] = recv(rbuf)
        samples[i] = clock() - t0
        if starts is not None:
            starts[i] = t0


def wire_size(size: int) -> int:
    """Bytes on the wire for a *size*-byte message in :func:`exact_roundtrips`: a 0-byte
    write would wake nobody (read(2) of a pipe returns only once a byte is there), so an
    empty message travels as a 1-byte token, like ``perf bench sched pipe``'s."""
    return size or 1


def exact_roundtrips(
    channel: str, fds: tuple[int, int], msg: memoryview, rbuf: memoryview, samples: array[int]
) -> None:
    """The lean loop of a byte stream whose size both sides know: no frame header.

    *msg* is what goes on the wire (:func:`wire_size` bytes), *rbuf* at least as long. One
    ``write(2)`` and, in the common case, one ``readv(2)`` per round trip, as a hand-written C
    or Python loop would do; a short transfer (a message larger than the pipe, a signal) is
    finished outside the common path. Every echo is exactly ``len(msg)`` bytes by
    construction; the caller checks the content after the loop.
    """
    rfd, wfd = fds
    clock = time.perf_counter_ns
    write, readv = os.write, os.readv
    wire = len(msg)
    into = (rbuf[:wire],)
    try:
        for i in range(len(samples)):
            t0 = clock()
            if (k := write(wfd, msg)) != wire:
                write_rest(channel, wfd, msg, k)
            if (k := readv(rfd, into)) != wire:
                read_rest(channel, rfd, into[0], k)
            samples[i] = clock() - t0
    except (BrokenPipeError, ConnectionResetError) as exc:  # EPIPE, RST: the peer is gone
        raise PeerDiedError(channel, f"peer closed its end ({exc.strerror})") from exc


def spin_roundtrips(
    words: SpinWords, msg: memoryview, rbuf: memoryview, samples: array[int]
) -> None:
    """The lean loop of a busy-polling end whose size both sides know: copy *msg* in, bump
    the sequence word, poll the other's until it moves, copy the echo out; no length word,
    no method call. Yields the CPU while polling when the two ends may share one."""
    out, inw = words.out, words.in_
    size = len(msg)
    data, back = words.data[:size], rbuf[:size]
    clock, yield_ = time.perf_counter_ns, os.sched_yield
    seq = out[0]
    for i in range(len(samples)):
        t0 = clock()
        data[:] = msg  # the message first...
        seq += 1
        out[0] = seq  # ...then the sequence word (total store order keeps them in this order)
        if words.yielding:
            while inw[0] != seq:
                yield_()
        else:
            while inw[0] != seq:
                pass
        back[:] = data
        samples[i] = clock() - t0
    words.resync()


def _spin_echo(words: SpinWords, buf: memoryview, size: int, n: int) -> None:
    """The peer's side of :func:`spin_roundtrips`: copy out, copy back, bump, *n* times."""
    out, inw = words.out, words.in_
    data, mine = words.data[:size], buf[:size]
    yield_ = os.sched_yield
    seq = out[0]
    for _ in range(n):
        seq += 1
        if words.yielding:
            while inw[0] != seq:
                yield_()
        else:
            while inw[0] != seq:
                pass
        mine[:] = data
        data[:] = mine
        out[0] = seq
    words.resync()


def _exact_echo(channel: str, fds: tuple[int, int], buf: memoryview, wire: int, n: int) -> None:
    """The peer's side of :func:`exact_roundtrips`: read exactly *wire* bytes, write them back."""
    rfd, wfd = fds
    write, readv = os.write, os.readv
    view = buf[:wire]
    into = (view,)
    try:
        for _ in range(n):
            if (k := readv(rfd, into)) != wire:
                read_rest(channel, rfd, view, k)
            if (k := write(wfd, view)) != wire:
                write_rest(channel, wfd, view, k)
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise PeerDiedError(channel, f"peer closed its end ({exc.strerror})") from exc


def stream_messages(
    channel: str, end: PayloadEnd, fds: tuple[int, int] | None, msg: memoryview,
    ack: memoryview, n: int, turns: bool,
) -> None:  # fmt: skip
    """Send *msg* *n* times, one way, as fast as the channel takes them; return once the
    receiver's acknowledgement (a 1-byte token, or empty) says all have arrived.

    *fds*: a byte stream of known size, written with plain ``write(2)`` as in
    :func:`exact_roundtrips`. *turns*: the channel hands one buffer back and forth
    (``Channel.turns``), so each message waits for the receiver's empty reply (no payload).
    """
    if fds is not None:
        rfd, wfd = fds
        write, wire = os.write, len(msg)
        try:
            for _ in range(n):
                if (k := write(wfd, msg)) != wire:
                    write_rest(channel, wfd, msg, k)
            if os.readv(rfd, (ack[:1],)) != 1:
                raise PeerDiedError(channel, "peer closed its end (end of file)")
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise PeerDiedError(channel, f"peer closed its end ({exc.strerror})") from exc
        return
    send, recv = end.send, end.recv_into
    if turns:
        for _ in range(n):
            send(msg)
            recv(ack)  # the buffer is ours again
        return
    for _ in range(n):
        send(msg)
    recv(ack)


def _stream_sink(
    channel: str, end: PayloadEnd, fds: tuple[int, int] | None, buf: memoryview, size: int,
    n: int, turns: bool,
) -> int:  # fmt: skip
    """The peer's side of :func:`stream_messages`: take *n* messages, acknowledge. Returns the
    length of the last message, which *buf* still holds (its content is checked afterwards)."""
    empty = buf[:0]
    if fds is not None:
        rfd, wfd = fds
        readv, wire = os.readv, wire_size(size)
        view = buf[:wire]
        into = (view,)
        for _ in range(n):
            if (k := readv(rfd, into)) != wire:
                read_rest(channel, rfd, view, k)
        try:
            os.write(wfd, buf[:1])
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise PeerDiedError(channel, f"peer closed its end ({exc.strerror})") from exc
        return wire
    send, recv = end.send, end.recv_into
    k = 0
    if turns:
        for _ in range(n):
            k = recv(buf)
            send(empty)  # hand the buffer back: no payload returns
        return k
    for _ in range(n):
        k = recv(buf)
    send(empty)
    return k


def notify_roundtrips(
    end: NotifyEnd, samples: array[int], starts: array[int] | None = None
) -> None:
    """Post and wait for the peer's post back, ``len(samples)`` times (*starts*: as in
    :func:`payload_roundtrips`)."""
    clock = time.perf_counter_ns
    post = end.post
    wait = end.wait
    for i in range(len(samples)):
        t0 = clock()
        post()
        wait()
        samples[i] = clock() - t0
        if starts is not None:
            starts[i] = t0


def die_with_parent(parent: int) -> None:
    """In a forked peer: be killed when the runner dies, even in the middle of a batch.

    A peer blocked in sem_wait or mq_receive has no other way to learn that its client is gone
    (a runner killed with SIGKILL runs no cleanup). prctl(2) ``PR_SET_PDEATHSIG`` asks the
    kernel to send SIGKILL when the parent exits; a parent that exited before the prctl
    call is seen in getppid(2), which then names another process.
    """
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise errno_error("prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def current_cpu() -> int:
    """The CPU this thread last ran on, as the kernel reports it (``sched_getcpu(3)``): read
    back, so a peer that ran elsewhere than asked is seen, not assumed away."""
    return int(libc.sched_getcpu())


def _payload_echo(end: PayloadEnd, buf: memoryview, size: int, n: int) -> None:
    recv = end.recv_into
    send = end.send
    view = buf[:size]
    for _ in range(n):
        k = recv(buf)
        send(view if k == size else buf[:k])


def _notify_echo(end: NotifyEnd, n: int) -> None:
    wait = end.wait
    post = end.post
    for _ in range(n):
        wait()
        post()


# -- the peer ---------------------------------------------------------------------------


class Peer:
    """The server side of one channel, in a forked process or a thread of this process."""

    def __init__(
        self,
        channel: Channel,
        kind: PeerKind,
        size: int,
        cpu: int | None,
        exact: bool = False,
        stream: bool = False,
    ) -> None:
        """*exact*: every message is *size* bytes, and a byte stream carries it without a
        frame header (:func:`exact_roundtrips`); the client must then use that loop too.
        *stream*: the messages come one way (:func:`stream_messages`), not as round trips."""
        self.channel = channel
        self.kind = kind
        self.size = size
        self.cpu = cpu
        self.exact = exact
        self.stream = stream
        self.pid: int | None = None  # forked peer
        self.exit_status: int | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: str | None = None
        self._cmd_r, self._cmd_w = os.pipe2(os.O_CLOEXEC)
        self._rep_r, self._rep_w = os.pipe2(os.O_CLOEXEC)
        self._rep_file = os.fdopen(self._rep_r, "rb", buffering=0)
        self._closed = False

    # ---- starting and stopping

    def start(self) -> None:
        if self.kind == "process":
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:  # the peer process
                code = 0
                try:
                    die_with_parent(parent)
                    # A runner may fork with SIGINT, SIGTERM and SIGHUP blocked (so that none
                    # can split its setup); the peer process must still end with its group.
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)
                    os.close(self._cmd_w)
                    os.close(self._rep_r)
                    self._serve()
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)  # never return into the parent's code
            self.pid = pid
            os.close(self._cmd_r)  # only the peer reads commands
            os.close(self._rep_w)  # only the peer writes reports: EOF when it dies
        else:
            self._thread = threading.Thread(
                target=self._thread_main, name=f"peer-{self.channel.name}", daemon=True
            )
            self._thread.start()

    def _thread_main(self) -> None:
        main = threading.main_thread().ident
        try:
            self._serve()
        except BaseException as exc:
            self._thread_error = f"{type(exc).__name__}: {exc}"
            if main is not None:
                signal.pthread_kill(main, signal.SIGCHLD)  # wake a client blocked on us

    def _serve(self) -> None:
        """The peer's whole life: pin, open the server end, echo batches until told to stop."""
        try:
            if self.cpu is not None:
                os.sched_setaffinity(0, {self.cpu})  # 0 = the calling thread
            buf = memoryview(bytearray(max(self.size, 1)))
            with self.channel.open("server") as end:
                self._report({"ready": True, "cpu": sorted(os.sched_getaffinity(0))})
                fds = end.stream_fds() if self.exact and isinstance(end, PayloadEnd) else None
                assert isinstance(end, PayloadEnd | NotifyEnd)
                while (cmd := self._next_command())[0] > 0:
                    n, untimed = cmd
                    # asked per batch: by now the client has opened and said where it runs
                    spin = end.spin_words() if self.exact and isinstance(end, PayloadEnd) else None
                    # The untimed first messages (the client's re-warm) are served before the
                    # counts start: this end's figures then cover what the client timed.
                    if untimed:
                        self._take(end, fds, spin, buf, untimed)
                    before = self._usage()
                    last = self._take(end, fds, spin, buf, n - untimed)
                    use = self._usage() - before
                    report: dict[str, Any] = {
                        "voluntary": use.voluntary,
                        "involuntary": use.involuntary,
                        "user_s": use.user_s,
                        "system_s": use.system_s,
                        "last_cpu": use.last_cpu,
                        "messages": n - untimed,
                    }
                    if last is not None:  # stream mode: what arrived, for the client to check
                        report["crc32"] = zlib.crc32(buf[:last])
                    self._report(report)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                self._report({"error": f"{type(exc).__name__}: {exc}"})
            raise

    def _take(
        self,
        end: PayloadEnd | NotifyEnd,
        fds: tuple[int, int] | None,
        spin: SpinWords | None,
        buf: memoryview,
        k: int,
    ) -> int | None:
        """Serve *k* messages the way this peer was made for: one-way, unframed on a byte
        stream, busy-polled, framed, or notifications. One-way: the length of the last
        message, which *buf* holds; None otherwise."""
        if self.stream:
            assert isinstance(end, PayloadEnd)
            return _stream_sink(self.channel.name, end, fds, buf, self.size, k, self.channel.turns)
        if fds is not None:
            _exact_echo(self.channel.name, fds, buf, wire_size(self.size), k)
        elif spin is not None:
            _spin_echo(spin, buf, self.size, k)
        elif isinstance(end, PayloadEnd):
            _payload_echo(end, buf, self.size, k)
        else:
            _notify_echo(end, k)
        return None

    def _usage(self) -> CtxSwitches:
        """This peer's counts: its thread's switches; the CPU time of its whole process when
        forked (a helper thread, such as a queue's feeder, works for it), of its thread when
        it is a thread of the runner."""
        mine = CtxSwitches.of_this_thread()
        if self.kind == "thread":
            return mine
        whole = CtxSwitches.of_this_process()
        return CtxSwitches(
            mine.voluntary, mine.involuntary, whole.user_s, whole.system_s, mine.last_cpu
        )

    def _next_command(self) -> tuple[int, int]:
        """(messages, of which untimed first); (0, 0): finish."""
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(self._cmd_r, 64)
            if not chunk:
                return 0, 0  # the client is gone: stop
            data += chunk
        cmd = json.loads(data)
        n = int(cmd["n"])
        return n, min(n, int(cmd.get("untimed", 0)))

    def _report(self, msg: dict[str, Any]) -> None:
        os.write(self._rep_w, json.dumps(msg).encode() + b"\n")

    # ---- used by the client, outside the timed loop

    def command(self, n: int, untimed: int = 0) -> None:
        """Tell the peer to echo *n* messages (0: finish), the first *untimed* of them before
        it starts counting its switches and CPU time."""
        os.write(self._cmd_w, json.dumps({"n": n, "untimed": untimed}).encode() + b"\n")

    def report(self) -> dict[str, Any]:
        """The peer's next report; raises PeerDiedError if it reported an error or died."""
        line = self._rep_file.readline()
        if not line:
            raise PeerDiedError(self.channel.name, self._death_reason())
        msg: dict[str, Any] = json.loads(line)
        if "error" in msg:
            raise ChannelError(self.channel.name, f"peer failed: {msg['error']}")
        return msg

    def _death_reason(self) -> str:
        if self.kind == "thread":
            return f"peer thread failed: {self._thread_error or 'ended'}"
        status = self.exit_status
        if status is None and self.pid is not None:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self.pid, 0)
                self.exit_status = status
        if status is not None and os.WIFSIGNALED(status):
            return f"peer process killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return "peer process exited"

    @contextlib.contextmanager
    def watch(self, timeout: float) -> Iterator[None]:
        """While inside, a dead peer or a batch longer than *timeout* s raises in this thread."""

        def on_child(signum: int, frame: FrameType | None) -> None:
            if self.kind == "thread":
                if self._thread_error is not None:
                    raise PeerDiedError(self.channel.name, self._death_reason())
                return
            if self.pid is None or self.exit_status is not None:
                return
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.exit_status = status
                    raise PeerDiedError(self.channel.name, self._death_reason())

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            raise ChannelError(self.channel.name, f"no reply within {timeout:g} s")

        old_child = signal.signal(signal.SIGCHLD, on_child)
        old_alarm = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            on_child(signal.SIGCHLD, None)  # it may have died before the handler was set
            yield
        finally:
            # Block both while restoring: a SIGCHLD arriving between the two calls would
            # otherwise raise here and leave our handlers installed. A pending one stays
            # pending and is delivered to the restored handler.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGALRM})
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old_alarm)
                signal.signal(signal.SIGCHLD, old_child)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def stop(self, timeout: float = 2.0) -> None:
        """Tell the peer to finish and reap it; kill a forked peer that does not. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.command(0)
        os.close(self._cmd_w)  # EOF on its command pipe also tells it to stop
        if self.kind == "process":
            self._reap(timeout)
        else:
            assert self._thread is not None
            self._thread.join(timeout)
            os.close(self._cmd_r)
            os.close(self._rep_w)
        self._rep_file.close()

    def _reap(self, timeout: float) -> None:
        if self.pid is None or self.exit_status is not None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = status
                return
            time.sleep(0.005)
        os.kill(self.pid, signal.SIGKILL)  # stuck in a blocking call: no other way out
        _, self.exit_status = os.waitpid(self.pid, 0)
