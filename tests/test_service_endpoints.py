"""The daemon's echo endpoints through the client API the benchmark runner uses.

Each test starts a real daemon, opens an endpoint with
:func:`daemonkit.service.client.open_endpoint`, runs the runner's own timed loops on it
(echoes checked byte for byte), and checks from outside what the kernel holds: the runtime
dir, /dev/shm, the daemon's signal mask, and that everything goes when the client closes,
dies, or the daemon stops.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from array import array
from pathlib import Path

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    Daemons,
    daemons_fixture,
    dk,
    proc_status,
    wait_until,
)

from daemonkit.bench.peer import notify_roundtrips, payload_roundtrips
from daemonkit.channels.base import NotifyEnd, PayloadEnd
from daemonkit.errors import ChannelError
from daemonkit.service.client import open_endpoint, request
from daemonkit.service.endpoints import ENDPOINT_NAMES, REGISTRY

# Derived from the registry: a new endpoint is tested by the contract tests below as it is added.
PAYLOAD_ENDPOINTS = [name for name, cls in REGISTRY.items() if cls.payload]
NOTIFY_ENDPOINTS = [name for name, cls in REGISTRY.items() if not cls.payload]
SIZES = [0, 64, 65536 + 3, 1 << 20]
USR1 = 1 << (signal.SIGUSR1 - 1)


def daemon_objects(pid: int, rdir: Path) -> list[str]:
    """What the daemon made that is still there: runtime-dir files and /dev/shm names."""
    files = [p.name for p in rdir.iterdir() if p.name.startswith(f"dk.{pid}.")]
    return files + [n for n in os.listdir("/dev/shm") if f"dk.{pid}." in n]


def counters(rdir: Path, name: str) -> dict[str, int]:
    reply = request(rdir, {"cmd": "status"})["endpoints"][name]
    return {"echoes": reply["echoes"], "clients": reply["clients"]}


def counters_reach(rdir: Path, name: str, expected: dict[str, int]) -> None:
    """The endpoint's counters become *expected*: a serving thread counts an echo just after
    it replied, so the client may ask before the last one is counted."""
    wait_until(lambda: counters(rdir, name) == expected, what=f"{name} counters {expected}")


def roundtrips(end: PayloadEnd, size: int, n: int) -> None:
    msg = bytes((i * 7 + size) % 251 for i in range(size))
    rbuf = memoryview(bytearray(max(size, 1)))
    samples, got = array("q", [0] * n), array("q", [0] * n)
    payload_roundtrips(end, memoryview(msg), rbuf, samples, got)
    assert set(got) == {size}
    assert bytes(rbuf[:size]) == msg
    assert min(samples) > 0


@pytest.mark.parametrize("name", PAYLOAD_ENDPOINTS)
def test_payload_endpoint_echoes_and_cleans_up(daemons: Daemons, name: str) -> None:
    daemons.start()
    pid = daemons.pid()
    shared = daemon_objects(pid, daemons.rdir)  # listening sockets made at start
    for obj in shared:
        assert stat.S_IMODE(os.stat(daemons.rdir / obj).st_mode) == 0o600
    end = open_endpoint(daemons.rdir, name, max(SIZES))
    assert isinstance(end, PayloadEnd)
    per_client = sorted(set(daemon_objects(pid, daemons.rdir)) - set(shared))
    if name == "fifo":  # a FIFO pair, 0600, in the runtime dir
        assert len(per_client) == 2
        for obj in per_client:
            st = os.stat(daemons.rdir / obj)
            assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    elif name == "posix-shm":  # two semaphores, 0600, in /dev/shm; the buffer has no name
        assert len(per_client) == 2 and all(o.startswith("sem.") for o in per_client)
        for obj in per_client:
            assert stat.S_IMODE(os.stat(Path("/dev/shm") / obj).st_mode) == 0o600
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert f"/memfd:dk.{pid}.posix-shm." in maps  # the sealed memfd, mapped by the daemon
    else:
        assert per_client == []
    counts = {size: 5 if size > 65536 else 200 for size in SIZES}
    for size, n in counts.items():
        roundtrips(end, size, n)
    total = sum(counts.values())
    counters_reach(daemons.rdir, name, {"echoes": total, "clients": 1})
    end.close()
    end.close()  # idempotent
    wait_until(lambda: counters(daemons.rdir, name)["clients"] == 0, what="the release")
    assert sorted(daemon_objects(pid, daemons.rdir)) == sorted(shared)
    assert counters(daemons.rdir, name)["echoes"] == total
    assert dk("stop", *daemons.loc()).returncode == 0
    assert daemon_objects(pid, daemons.rdir) == []  # the listening sockets went at stop


@pytest.mark.parametrize("name", NOTIFY_ENDPOINTS)
def test_notify_endpoint_round_trips_and_cleans_up(daemons: Daemons, name: str) -> None:
    daemons.start()
    pid = daemons.pid()
    shared = daemon_objects(pid, daemons.rdir)
    end = open_endpoint(daemons.rdir, name, 0)
    assert isinstance(end, NotifyEnd)
    try:
        samples = array("q", [0] * 200)
        notify_roundtrips(end, samples)
        assert min(samples) > 0
        counters_reach(daemons.rdir, name, {"echoes": 200, "clients": 1})
    finally:
        end.close()
    end.close()  # idempotent
    wait_until(lambda: counters(daemons.rdir, name)["clients"] == 0, what="the release")
    assert daemon_objects(pid, daemons.rdir) == shared
    assert dk("stop", *daemons.loc()).returncode == 0
    assert daemon_objects(pid, daemons.rdir) == []


def test_every_registered_endpoint_is_under_contract() -> None:
    """Adding an endpoint is one module plus one registry line: the contract tests above then
    cover it, as a payload or a notification endpoint, and the configuration accepts it."""
    from params import parametrized

    from daemonkit.service.config import Config

    payload = {c[0] for c in parametrized(test_payload_endpoint_echoes_and_cleans_up)}
    notify = {c[0] for c in parametrized(test_notify_endpoint_round_trips_and_cleans_up)}
    for name, cls in REGISTRY.items():
        assert cls.name == name
        assert name in (payload if cls.payload else notify), name
    assert Config().endpoints == ENDPOINT_NAMES == tuple(REGISTRY)


def test_signal_endpoint_replies_to_the_sender(daemons: Daemons) -> None:
    daemons.start()
    pid = daemons.pid()
    assert int(proc_status(pid)["SigBlk"], 16) == 0
    # A bystander thread with SIGUSR1 unblocked: a process-directed reply could land there
    # and kill us (default action); the daemon's tgkill(2) reply goes to the waiter only.
    stop_bystander = threading.Event()
    bystander = threading.Thread(target=stop_bystander.wait)
    bystander.start()
    end = open_endpoint(daemons.rdir, "signal", 0)
    assert isinstance(end, NotifyEnd)
    try:
        # While attached, every thread of the daemon blocks SIGUSR1 except the one inside
        # sigwaitinfo (the kernel lifts the block for the waited set during the wait).
        tasks = list(Path(f"/proc/{pid}/task").iterdir())

        def in_sigwait(task: Path) -> bool:
            return (task / "wchan").read_text().startswith("do_sigtimedwait")

        wait_until(lambda: sum(map(in_sigwait, tasks)) == 1, what="a thread in sigwaitinfo")
        for task in tasks:
            blocked = (task / "status").read_text().split("SigBlk:")[1].split()[0]
            assert in_sigwait(task) or int(blocked, 16) & USR1, task
        with pytest.raises(ChannelError, match="one client at a time"):
            open_endpoint(daemons.rdir, "signal", 0)
        samples = array("q", [0] * 300)
        notify_roundtrips(end, samples)
        assert min(samples) > 0
        counters_reach(daemons.rdir, "signal", {"echoes": 300, "clients": 1})
    finally:
        end.close()
        stop_bystander.set()
        bystander.join()
    wait_until(lambda: int(proc_status(pid)["SigBlk"], 16) == 0, what="the main thread's unblock")
    assert counters(daemons.rdir, "signal")["clients"] == 0
    assert dk("stop", *daemons.loc()).returncode == 0


def test_client_killed_mid_session_releases_its_objects(daemons: Daemons) -> None:
    daemons.start()
    pid = daemons.pid()
    shared = set(daemon_objects(pid, daemons.rdir))
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # the client: open per-client objects, echo once, then wait to be killed
        code = 1
        try:
            os.close(ready_r)
            ends = [open_endpoint(daemons.rdir, n, 4096) for n in ("fifo", "posix-shm")]
            for end in ends:
                assert isinstance(end, PayloadEnd)
                roundtrips(end, 100, 1)
            os.write(ready_w, b"x")
            signal.pause()
        finally:
            os._exit(code)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"x"
        assert len(set(daemon_objects(pid, daemons.rdir)) - shared) == 4  # 2 FIFOs, 2 semaphores
    finally:
        os.close(ready_r)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    wait_until(lambda: set(daemon_objects(pid, daemons.rdir)) == shared, what="the release")
    assert counters(daemons.rdir, "fifo") == {"echoes": 1, "clients": 0}
    assert counters(daemons.rdir, "posix-shm") == {"echoes": 1, "clients": 0}
    assert dk("stop", *daemons.loc()).returncode == 0


def test_stop_with_clients_attached_removes_everything(daemons: Daemons) -> None:
    daemons.start()
    pid = daemons.pid()
    ends = [open_endpoint(daemons.rdir, n, 1024) for n in ENDPOINT_NAMES]
    try:
        res = dk("stop", *daemons.loc(), "--timeout", "2")
        assert res.returncode == 0 and "SIGTERM" in res.stdout
        assert daemon_objects(pid, daemons.rdir) == []
        assert os.listdir(daemons.rdir) == []
    finally:
        for end in ends:
            end.close()


def test_endpoint_errors(daemons: Daemons) -> None:
    conf = daemons.base / "only-fifo.toml"
    conf.write_text('endpoints = ["fifo"]\n')
    daemons.start("--config", conf)
    with pytest.raises(ChannelError, match="no endpoint 'zmq-ipc'"):
        open_endpoint(daemons.rdir, "zmq-ipc", 10)
    st = request(daemons.rdir, {"cmd": "status"})
    assert set(st["endpoints"]) == {"control", "fifo"}
    assert dk("stop", *daemons.loc()).returncode == 0
    daemons.rdir.rmdir()
    conf.unlink()
    daemons.start()
    with pytest.raises(ChannelError, match="max_size"):
        open_endpoint(daemons.rdir, "posix-shm", -1)
    assert dk("stop", *daemons.loc()).returncode == 0
