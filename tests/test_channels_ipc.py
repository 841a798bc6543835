"""System V and POSIX IPC channels, checked where the kernel shows their objects.

/proc/sysvipc/{sem,shm,msg} for System V (key, id, perms), /dev/shm for POSIX shared memory
and semaphores (``sem.NAME``), /dev/mqueue for POSIX message queues; a peer killed with
SIGKILL while the client waits; kernel size limits; and daemonkit.cleanup on the leftovers of
a process that died without closing its channels.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sysv_ipc
from facilities import missing, need

from daemonkit.bench.peer import Peer
from daemonkit.channels import channel_class
from daemonkit.channels.base import End, NotifyEnd, PayloadEnd
from daemonkit.cleanup import KernelObject, list_objects, remove_object
from daemonkit.errors import ChannelError, PeerDiedError, SizeNotSupportedError
from daemonkit.runtime import owner_of_sysv_key, sysv_key

# channel -> the objects it makes, by cleanup kind
OBJECTS = {
    "sysv-sem": {"sysv-sem": 2},
    "posix-sem": {"posix-sem": 2},
    "sysv-shm": {"sysv-shm": 1, "sysv-sem": 1},
    "posix-shm": {"posix-shm": 1, "posix-sem": 2},
    "sysv-mq": {"sysv-mq": 1},
    "posix-mq": {"posix-mq": 2},
}
CHANNELS = list(OBJECTS)
PAYLOAD = [name for name in CHANNELS if channel_class(name).payload]
MQUEUE_MOUNTED = missing("mqueue") is None
_TABLES = {"sysv-sem": "sem", "sysv-shm": "shm", "sysv-mq": "msg"}


def _needs_mqueue(name: str) -> None:
    if name == "posix-mq":
        need("mqueue")


def _owned_by(pid: int) -> list[KernelObject]:
    return [o for o in list_objects() if o.owner == pid]


def _sysv_rows(table: str) -> dict[int, tuple[int, str]]:
    """id -> (key, perms) from /proc/sysvipc/TABLE, as the kernel prints them."""
    rows = {}
    for line in Path(f"/proc/sysvipc/{table}").read_text().splitlines()[1:]:
        key, ident, perms = line.split()[:3]
        rows[int(ident)] = (int(key), perms)
    return rows


def _kernel_view(obj: KernelObject) -> tuple[int, str] | None:
    """(owner pid as the kernel records it, in key or name; mode), or None: no such object."""
    if obj.kind.startswith("sysv-"):
        row = _sysv_rows(_TABLES[obj.kind]).get(int(obj.name))
        return None if row is None else (owner_of_sysv_key(row[0]) or 0, row[1])
    name = obj.name.lstrip("/")
    path = {
        "posix-shm": Path("/dev/shm") / name,
        "posix-sem": Path("/dev/shm") / f"sem.{name}",
        "posix-mq": Path("/dev/mqueue") / name,
    }[obj.kind]
    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return None
    return obj.owner, f"{mode:o}"


@pytest.mark.parametrize("name", CHANNELS)
def test_objects_are_visible_private_and_gone_after_close(name: str) -> None:
    _needs_mqueue(name)
    me = os.getpid()
    before = set(_owned_by(me))
    with channel_class(name)("process", 64) as ch:
        made = [o for o in _owned_by(me) if o not in before]
        assert Counter(o.kind for o in made) == OBJECTS[name]
        for obj in made:
            assert obj.owner_alive
            # perms 600 in /proc/sysvipc, mode 0600 in /dev/shm and /dev/mqueue
            assert _kernel_view(obj) == (me, "600"), obj
        ch.close()
        ch.close()  # twice is harmless
        for obj in made:
            assert _kernel_view(obj) is None, f"{obj} still in the kernel after close()"
    assert set(_owned_by(me)) == before


@pytest.mark.parametrize("name", CHANNELS)
def test_channel_closed_before_its_ends_unmaps_when_the_last_end_closes(name: str) -> None:
    # A thread peer may close its end after the channel: names go at once, mappings later.
    _needs_mqueue(name)
    before = set(_owned_by(os.getpid()))
    ch = channel_class(name)("thread", 64)
    client, server = ch.open("client"), ch.open("server")
    segments = [int(o.name) for o in _owned_by(os.getpid()) if o.kind == "sysv-shm"]
    ch.close()
    assert set(_owned_by(os.getpid())) == before  # unlinked, IPC_RMID: nobody can find them
    if segments:  # still attached here, so still in the kernel, keyless
        assert _sysv_rows("shm")[segments[0]][0] == 0
    client.close()
    server.close()  # the last end: detach / munmap / close now
    assert not any(i in _sysv_rows("shm") for i in segments)


@pytest.mark.parametrize("name", PAYLOAD)
@pytest.mark.parametrize("size", [0, 1, 8192])
def test_round_trip_in_turn_carries_every_byte(name: str, size: int) -> None:
    # One thread plays both ends in turn: the kernel object holds the message in between.
    msg = memoryview(os.urandom(size))
    buf = memoryview(bytearray(size + 1))
    with (
        channel_class(name)("thread", size) as ch,
        ch.open("client") as client,
        ch.open("server") as server,
    ):
        assert isinstance(client, PayloadEnd) and isinstance(server, PayloadEnd)
        for _ in range(3):
            client.send(msg)
            assert server.recv_into(buf) == size and buf[:size] == msg
            server.send(buf[:size])
            buf[:size] = bytes(size)
            assert client.recv_into(buf) == size and buf[:size] == msg


def _kill_soon(pid: int, delay: float, sig: int = signal.SIGKILL) -> None:
    """Send *sig* to *pid* after *delay* s from a thread that blocks every signal.

    A process-directed signal (the SIGCHLD that follows) goes to any thread not blocking it;
    only the main thread runs Python handlers, and only the thread that gets the signal sees
    its blocking call fail with EINTR. So this helper thread must not take it.
    """

    def kill() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        time.sleep(delay)
        os.kill(pid, sig)

    threading.Thread(target=kill, daemon=True).start()


def _start_waiting(end: End, size: int) -> None:
    """Send (or post), then block for a reply that will never come."""
    if isinstance(end, PayloadEnd):
        end.send(memoryview(bytes(size)))
        end.recv_into(memoryview(bytearray(size + 1)))
    else:
        assert isinstance(end, NotifyEnd)
        end.post()
        end.wait()


def _serve_one(server: End, then: Callable[[], None]) -> None:
    """In a thread with every signal blocked: take the request, call *then*, reply."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    if isinstance(server, PayloadEnd):
        buf = memoryview(bytearray(65))
        n = server.recv_into(buf)
        then()
        server.send(buf[:n])
    else:
        assert isinstance(server, NotifyEnd)
        server.wait()
        then()
        server.post()


@pytest.mark.parametrize("name", CHANNELS)
def test_a_signal_whose_handler_returns_does_not_end_a_system_v_wait(name: str) -> None:
    handled_at: list[float] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: handled_at.append(time.monotonic()))

    def interrupt_then_wait() -> None:
        time.sleep(0.1)  # the client is blocked by now
        os.kill(os.getpid(), signal.SIGUSR1)  # the main thread takes it: EINTR there
        time.sleep(0.1)

    try:
        with (
            channel_class(name)("thread", 64) as ch,
            ch.open("client") as client,
            ch.open("server") as server,
        ):
            helper = threading.Thread(target=_serve_one, args=(server, interrupt_then_wait))
            helper.start()
            try:
                if name.startswith("sysv-"):  # the handler ran, the wait went on (PEP 475)
                    _start_waiting(client, 64)
                    replied_at = time.monotonic()
                    # It ran while the client was blocked (EINTR), not after the reply.
                    assert len(handled_at) == 1 and replied_at - handled_at[0] > 0.05
                else:  # posix_ipc hides what the handler did: the wait ends, documented
                    with pytest.raises(ChannelError, match="interrupted by a signal"):
                        _start_waiting(client, 64)
            finally:
                helper.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(handled_at) == 1


@pytest.mark.parametrize("name", CHANNELS)
def test_ctrl_c_ends_a_wait_with_keyboard_interrupt(name: str) -> None:
    with channel_class(name)("thread", 64) as ch, ch.open("client") as client:
        _kill_soon(os.getpid(), 0.1, signal.SIGINT)  # nobody serves: only SIGINT ends it
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            _start_waiting(client, 64)
        assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("name", CHANNELS)
def test_peer_killed_mid_wait_ends_the_wait(name: str) -> None:
    _needs_mqueue(name)
    me = os.getpid()
    before = set(_owned_by(me))
    with channel_class(name)("process", 64) as ch:
        peer = Peer(ch, "process", 64, cpu=None)
        peer.start()
        try:
            with ch.open("client") as end, peer.watch(timeout=10):
                assert peer.report()["ready"]
                assert peer.pid is not None
                _kill_soon(peer.pid, 0.3)  # the peer never echoes: it waits for a command
                t0 = time.monotonic()
                # sysv_ipc leaves the handler's exception alone: PeerDiedError itself.
                # posix_ipc replaces it: ChannelError "interrupted by a signal".
                expected = PeerDiedError if name.startswith("sysv-") else ChannelError
                with pytest.raises(expected) as err:
                    _start_waiting(end, 64)
                waited = time.monotonic() - t0
        finally:
            peer.stop()
        assert 0.2 < waited < 5, f"the wait ended after {waited:.2f} s"
        assert peer.exit_status is not None and os.WIFSIGNALED(peer.exit_status)
        if expected is ChannelError:
            assert "interrupted by a signal" in str(err.value)
    assert set(_owned_by(me)) == before, "objects left after close()"


@pytest.mark.parametrize(
    ("name", "sysctl"),
    [("sysv-mq", "kernel.msgmax"), ("posix-mq", "fs.mqueue.msgsize_max")],
)
def test_size_over_the_kernel_limit_is_refused_by_name(name: str, sysctl: str) -> None:
    _needs_mqueue(name)
    cls = channel_class(name)
    path = Path("/proc/sys") / sysctl.replace(".", "/")
    limit = int(path.read_text())
    assert cls.max_message_size() is not None
    assert cls.max_message_size() <= limit  # type: ignore[operator]
    before = set(_owned_by(os.getpid()))
    with pytest.raises(SizeNotSupportedError) as err:
        cls("process", limit + 1)
    assert f"{sysctl} = {limit}" in str(err.value)
    assert f"sysctl {sysctl}=" in str(err.value)  # says how to raise it
    assert set(_owned_by(os.getpid())) == before  # nothing half-made is left


@pytest.mark.parametrize("name", ["sysv-shm", "posix-shm", "sysv-mq", "posix-mq"])
def test_message_longer_than_the_channel_is_refused(name: str) -> None:
    with channel_class(name)("thread", 16) as ch, ch.open("client") as end:
        assert isinstance(end, PayloadEnd)
        with pytest.raises(SizeNotSupportedError):
            end.send(memoryview(bytes(17)))


def _our_sysv_keys(kind: str) -> list[int]:
    """Keys of the System V objects of *kind* this process owns, read from /proc/sysvipc."""
    rows = _sysv_rows(_TABLES[kind])
    return sorted(rows[int(o.name)][0] for o in _owned_by(os.getpid()) if o.kind == kind)


def test_system_v_keys_are_claimed_released_and_never_shared() -> None:
    # Semaphore sets, segments and queues are three key spaces: four keys in each.
    four = sorted(sysv_key(i) for i in range(4))
    sems = [channel_class("sysv-sem")("thread") for _ in range(2)]  # 2 semaphore keys each
    try:
        assert _our_sysv_keys("sysv-sem") == four
        with pytest.raises(ChannelError, match="no free System V key"):
            channel_class("sysv-shm")("thread", 64)  # needs a fifth semaphore key
        with channel_class("sysv-mq")("thread", 64):  # another key space: fine
            assert _our_sysv_keys("sysv-mq") == [sysv_key(0)]
        sems.pop().close()  # IPC_RMID frees its keys at once
        with channel_class("sysv-shm")("thread", 64), channel_class("sysv-shm")("thread", 64):
            assert _our_sysv_keys("sysv-sem") == four  # two sets took the keys given back
            assert _our_sysv_keys("sysv-shm") == four[:2]
    finally:
        for ch in sems:
            ch.close()
    assert not [o for o in _owned_by(os.getpid()) if o.kind.startswith("sysv-")]


def test_a_key_taken_in_the_kernel_is_skipped_not_adopted() -> None:
    # What a dead process that had our pid (pids are reused) left under our first key.
    stale = sysv_ipc.Semaphore(sysv_key(0), sysv_ipc.IPC_CREX, 0o600, 5)
    try:
        with channel_class("sysv-sem")("thread") as ch, ch.open("client") as end:
            assert _our_sysv_keys("sysv-sem") == sorted(sysv_key(i) for i in range(3))
            assert isinstance(end, NotifyEnd)
            end.post()  # posts on the channel's own set, not on the stale one
        assert stale.value == 5  # neither adopted nor removed
    finally:
        stale.remove()


def test_cleanup_removes_what_a_dead_owner_left_and_only_that() -> None:
    # Every kind of object, within the four System V keys of one process.
    dying = ["sysv-shm", "sysv-mq", "posix-shm"] + (["posix-mq"] if MQUEUE_MOUNTED else [])
    live = [channel_class(name)("process", 16) for name in ("sysv-sem", "posix-sem")]
    try:
        pid = os.fork()
        if pid == 0:  # a process that makes objects, then dies without close()
            code = 0
            try:
                for name in dying:
                    channel_class(name)("process", 16)
            except BaseException:
                code = 1
            os._exit(code)  # no close(), no atexit: the objects stay in the kernel
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        left = _owned_by(pid)
        expected: Counter[str] = Counter()
        for name in dying:
            expected.update(OBJECTS[name])
        assert Counter(o.kind for o in left) == expected
        assert all(not o.owner_alive and _kernel_view(o) is not None for o in left)
        mine = _owned_by(os.getpid())
        assert mine and all(o.owner_alive for o in mine)

        for obj in [o for o in list_objects() if o.owner == pid and not o.owner_alive]:
            remove_object(obj)
            remove_object(obj)  # gone already is not an error
        assert _owned_by(pid) == []
        assert all(_kernel_view(o) is None for o in left)
        assert set(_owned_by(os.getpid())) == set(mine)  # the live owner's are untouched
        assert all(_kernel_view(o) is not None for o in mine)
    finally:
        for ch in live:
            ch.close()
