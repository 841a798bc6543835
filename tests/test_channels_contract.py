"""The channel contract, checked on every registered channel with real peers.

For each channel name and each peer kind it supports, a real forked process or a real thread
runs the server end through :class:`daemonkit.bench.peer.Peer`, and the test checks what the
kernel shows: the echoes, the descriptors in ``/proc/self/fd``, the threads in
``/proc/self/task``, the signal mask in ``/proc/thread-self/status``, the files in the runtime
dir (and their modes), and, for forked peers, that a SIGKILL mid-run is reported promptly.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemonkit.bench.peer import (
    Peer,
    exact_roundtrips,
    notify_roundtrips,
    payload_roundtrips,
    spin_roundtrips,
    wire_size,
)
from daemonkit.channels import channel_class, channel_names
from daemonkit.channels.base import Channel, End, NotifyEnd, PayloadEnd, PeerKind
from daemonkit.errors import ChannelError, SizeNotSupportedError
from daemonkit.runtime import owner_of_name, resolve_runtime_dir

SIZES = [0, 64, 4096, 65536, 1 << 20]
ECHOES_PER_SIZE = 3  # each with its own random content, each checked
NOTIFY_ROUNDTRIPS = 200
REPLY_TIMEOUT = 10.0  # s: the watch's alarm; a hang fails the test instead of blocking it
DEATH_NOTICED_WITHIN = 5.0  # s: a SIGKILLed peer must be reported well before that alarm


def _cases(process_only: bool = False) -> list[object]:
    return list(_each_case(process_only))


def _each_case(process_only: bool) -> Iterator[object]:
    for name in channel_names():
        for kind in sorted(channel_class(name).peer_kinds):
            if kind == "process" or not process_only:
                yield pytest.param(name, kind, id=f"{name}-{kind}")


def _sizes(cls: type[Channel]) -> list[int]:
    limit = cls.max_message_size()
    return [s for s in SIZES if limit is None or s <= limit]


def _runtime_files() -> dict[Path, os.stat_result]:
    """Files of this process in the runtime dir (FIFOs, sockets), as lstat shows them."""
    rdir = resolve_runtime_dir()
    try:
        names = os.listdir(rdir)
    except FileNotFoundError:
        return {}
    return {rdir / n: os.lstat(rdir / n) for n in names if owner_of_name(n) == os.getpid()}


def _kernel_state() -> tuple[set[str], int, str]:
    """Open descriptors, threads, and this thread's blocked-signal mask, from /proc."""
    fds = set(os.listdir("/proc/self/fd"))
    tasks = len(os.listdir("/proc/self/task"))
    status = Path("/proc/thread-self/status").read_text()
    sigblk = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
    return fds, tasks, sigblk


def _settles_to(expected: tuple[set[str], int, str]) -> bool:
    """True once /proc shows *expected* again: an OS thread outlives join() by a moment.

    Threads may be fewer than before (a thread started before the test, such as a previous
    test's timeout timer, may end meanwhile), never more.
    """

    def settled() -> bool:
        fds, tasks, sigblk = _kernel_state()
        return fds == expected[0] and tasks <= expected[1] and sigblk == expected[2]

    deadline = time.monotonic() + 2.0
    while not settled():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _open_client(ch: Channel, peer: Peer) -> End:
    """Open the client end under the watch: a FIFO's open() waits for the peer to open."""
    with peer.watch(timeout=REPLY_TIMEOUT):
        end = ch.open("client")
        assert peer.report()["ready"]
    return end


def _echo_checked(end: PayloadEnd, size: int) -> None:
    """One round trip of fresh random bytes; the echo must come back whole and identical."""
    msg = memoryview(os.urandom(size))
    rbuf = memoryview(bytearray(b"\xa5" * max(size, 1)))  # not what the echo will hold
    samples, got = array("q", [0]), array("q", [0])
    payload_roundtrips(end, msg, rbuf, samples, got)
    assert got[0] == size
    assert rbuf[:size] == msg, f"echo of {size} bytes differs"
    assert samples[0] > 0


def _round_trip_once(end: End) -> None:
    if isinstance(end, PayloadEnd):
        _echo_checked(end, 64)
    else:
        assert isinstance(end, NotifyEnd)
        notify_roundtrips(end, array("q", [0]))


@pytest.mark.parametrize(("name", "kind"), _cases())
def test_channel_round_trips_and_leaves_nothing(name: str, kind: PeerKind) -> None:
    cls = channel_class(name)
    sizes = _sizes(cls) if cls.payload else [0]
    fds, tasks, sigblk = _kernel_state()
    files_before = _runtime_files()

    ch = cls(kind, max(sizes))
    peer = Peer(ch, kind, max(sizes), cpu=None)
    peer.start()
    try:
        end = _open_client(ch, peer)
        try:
            created = {p: st for p, st in _runtime_files().items() if p not in files_before}
            for path, st in created.items():  # FIFOs and sockets, private to the owner
                assert stat.S_IMODE(st.st_mode) == 0o600, f"{path} is {st.st_mode:o}"
                assert stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode), path
            with peer.watch(timeout=REPLY_TIMEOUT):
                if isinstance(end, PayloadEnd):
                    assert cls.payload
                    for size in sizes:
                        peer.command(ECHOES_PER_SIZE)
                        for _ in range(ECHOES_PER_SIZE):
                            _echo_checked(end, size)
                        assert peer.report()["voluntary"] >= 0
                else:
                    assert isinstance(end, NotifyEnd) and not cls.payload
                    samples = array("q", [0] * NOTIFY_ROUNDTRIPS)
                    peer.command(len(samples))
                    notify_roundtrips(end, samples)
                    assert peer.report()["voluntary"] >= 0
                    assert min(samples) > 0
        finally:
            end.close()
            end.close()  # twice: harmless
    finally:
        peer.stop()
        ch.close()
    ch.close()  # twice: harmless

    if kind == "process":
        assert peer.exit_status is not None
        assert os.WIFEXITED(peer.exit_status) and os.WEXITSTATUS(peer.exit_status) == 0
    assert _runtime_files().keys() == files_before.keys(), "channel files left behind"
    assert not [p for p in created if p.exists()]
    assert _settles_to((fds, tasks, sigblk)), f"leaked: {_kernel_state()} != {(fds, tasks, sigblk)}"

    limit = cls.max_message_size()
    if limit is not None and limit < 1 << 30:  # a size that does not fit is refused up front
        with pytest.raises(SizeNotSupportedError):
            cls(kind, limit + 1).close()


@pytest.mark.parametrize(("name", "kind"), _cases(process_only=True))
def test_peer_killed_mid_run_is_reported_not_waited_for(name: str, kind: PeerKind) -> None:
    fds, _, sigblk = _kernel_state()
    with channel_class(name)(kind, 64) as ch:
        peer = Peer(ch, kind, 64, cpu=None)
        peer.start()
        try:
            with _open_client(ch, peer) as end:
                with peer.watch(timeout=REPLY_TIMEOUT):
                    peer.command(1_000_000)  # the peer is now mid-batch, blocked on the channel
                    _round_trip_once(end)
                assert peer.pid is not None
                # PeerDiedError, or a ChannelError naming the interrupted call; the watch's own
                # "no reply" alarm comes only after REPLY_TIMEOUT, so it cannot pass for one.
                with pytest.raises(ChannelError) as err, peer.watch(timeout=REPLY_TIMEOUT):
                    killed = time.monotonic()  # first: SIGCHLD may raise right after kill()
                    os.kill(peer.pid, signal.SIGKILL)
                    while time.monotonic() - killed < DEATH_NOTICED_WITHIN:
                        _round_trip_once(end)
                assert time.monotonic() - killed < DEATH_NOTICED_WITHIN, err.value
                assert "no reply within" not in str(err.value)
        finally:
            peer.stop()
    assert peer.exit_status is not None and os.WIFSIGNALED(peer.exit_status)
    assert _kernel_state()[0::2] == (fds, sigblk)


def test_every_registered_channel_is_under_contract() -> None:
    """Adding a channel is one module plus one registry line: these tests then cover it, with
    every peer kind it supports (and the peer-death test with its forked peer)."""
    from params import parametrized

    from daemonkit.channels import REGISTRY

    round_trip = set(parametrized(test_channel_round_trips_and_leaves_nothing))
    killed = set(parametrized(test_peer_killed_mid_run_is_reported_not_waited_for))
    assert REGISTRY and list(REGISTRY) == channel_names()
    for name in REGISTRY:
        kinds = channel_class(name).peer_kinds
        assert kinds, name
        assert {(name, kind) for kind in kinds} <= round_trip, name
        if "process" in kinds:
            assert (name, "process") in killed, name


LeanLoop = Callable[[memoryview, memoryview, "array[int]"], None]  # (msg, rbuf, samples)


def _lean_loop_echoes(
    name: str, size: int, wire: int, lean_loop: Callable[[PayloadEnd], LeanLoop]
) -> None:
    """Two batches of fresh content through a forked exact-size peer and the timed loop that
    *lean_loop* makes from the client end; each batch's *wire* bytes come back whole."""
    with channel_class(name)("process", size) as ch:
        peer = Peer(ch, "process", size, cpu=None, exact=True)
        peer.start()
        try:
            with _open_client(ch, peer) as end:
                assert isinstance(end, PayloadEnd)
                roundtrips = lean_loop(end)
                samples = array("q", [0] * ECHOES_PER_SIZE)
                with peer.watch(timeout=REPLY_TIMEOUT):
                    for _ in range(2):  # two batches, each with fresh content
                        msg = memoryview(os.urandom(wire))
                        rbuf = memoryview(bytearray(b"\xa5" * max(wire, 1)))
                        peer.command(len(samples))
                        roundtrips(msg, rbuf, samples)
                        assert rbuf[:wire] == msg and min(samples) > 0
                        assert peer.report()["voluntary"] >= 0
        finally:
            peer.stop()
    assert peer.exit_status == 0


@pytest.mark.parametrize("name", ["pipe", "fifo", "unix-stream", "tcp"])
@pytest.mark.parametrize("size", [0, 64, 1 << 20])
def test_a_byte_stream_of_known_size_echoes_unframed_and_whole(name: str, size: int) -> None:
    """The bench's lean loop: no frame header, exactly the message's bytes (a 0-byte message
    is a 1-byte token), a message larger than the pipe or socket buffer still arrives whole."""

    def lean_loop(end: PayloadEnd) -> LeanLoop:
        fds = end.stream_fds()
        assert fds is not None
        return lambda msg, rbuf, samples: exact_roundtrips(name, fds, msg, rbuf, samples)

    fds_before = set(os.listdir("/proc/self/fd"))
    _lean_loop_echoes(name, size, wire_size(size), lean_loop)
    assert set(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.parametrize("size", [0, 64, 1 << 20])
def test_busy_polling_of_known_size_echoes_whole_and_fresh(size: int) -> None:
    """shm-spin's lean loop: sequence words and the data area, no length word; each batch's
    fresh content comes back whole."""

    def lean_loop(end: PayloadEnd) -> LeanLoop:
        words = end.spin_words()
        assert words is not None
        return lambda msg, rbuf, samples: spin_roundtrips(words, msg, rbuf, samples)

    _lean_loop_echoes("shm-spin", size, size, lean_loop)
