"""The demo service from outside: control protocol, LSB exit codes, sd_notify, usage errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    CLI,
    Daemons,
    daemons_fixture,
    dk,
    gone,
    wait_until,
)

from daemonkit.service.client import ControlClient
from daemonkit.service.control import MAX_REQUEST

# -- control protocol ----------------------------------------------------------------------


@pytest.fixture
def running(daemons: Daemons) -> Iterator[Daemons]:
    daemons.start()
    yield daemons
    dk("stop", *daemons.loc())


def test_ping_and_status(running: Daemons) -> None:
    with ControlClient(running.rdir) as c:
        assert c.request({"cmd": "ping"}) == {"pong": True, "pid": running.pid()}
        st = c.request({"cmd": "status"})
    assert st["pid"] == running.pid() and st["backend"] == "native"
    assert st["version"] and st["uptime_s"] >= 0
    assert st["endpoints"]["control"]["requests"] == 2


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json\n", "malformed request"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"command": "ping"}\n', "no 'cmd' string"),
        (b'{"cmd": "frobnicate"}\n', "unknown command 'frobnicate'"),
        (b'{"cmd": "test-stop-watchdog"}\n', "test hooks are disabled"),
        (b'{"cmd": "open", "endpoint": "carrier-pigeon"}\n', "no endpoint"),
        (b"\xff\xfe\n", "malformed request"),
    ],
)
def test_bad_requests_get_an_error_and_serving_goes_on(
    running: Daemons, raw: bytes, error: str
) -> None:
    with ControlClient(running.rdir) as c:
        reply = c.request_raw(raw)
        assert list(reply) == ["error"] and error in reply["error"]
        assert c.request({"cmd": "ping"})["pong"]  # same connection still served


def test_oversized_request_is_refused_and_others_are_served(running: Daemons) -> None:
    with ControlClient(running.rdir) as big, ControlClient(running.rdir) as other:
        reply = big.request_raw(b"x" * (MAX_REQUEST + 10))
        assert reply == {"error": f"request larger than {MAX_REQUEST} bytes"}
        assert other.request({"cmd": "ping"})["pong"]
        st = other.request({"cmd": "status"})
        assert st["endpoints"]["control"]["errors"] == 1


def test_silent_client_blocks_nobody(running: Daemons) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        silent.connect(str(running.rdir / "control.sock"))
        half.connect(str(running.rdir / "control.sock"))
        half.sendall(b'{"cmd": "pi')  # a request that never finishes
        for _ in range(3):
            with ControlClient(running.rdir, timeout=1.0) as c:
                assert c.request({"cmd": "ping"})["pong"]
    finally:
        silent.close()
        half.close()


# -- LSB exit codes ------------------------------------------------------------------------


def test_status_exit_codes(daemons: Daemons) -> None:
    res = dk("status", *daemons.loc())
    assert (res.returncode, res.stdout) == (3, "daemonkit: not running\n")
    res = dk("reload", *daemons.loc())
    assert (res.returncode, res.stderr) == (7, "daemonkit: not running\n")
    daemons.start()
    pid = daemons.pid()
    res = dk("status", *daemons.loc())
    assert res.returncode == 0 and f"running (pid {pid}, backend native" in res.stdout
    os.kill(pid, signal.SIGSTOP)  # holds its lock, answers nothing
    try:
        res = dk("status", *daemons.loc())
        assert res.returncode == 4 and "does not answer" in res.stdout
    finally:
        os.kill(pid, signal.SIGCONT)
    assert dk("status", *daemons.loc(), "--json").returncode == 0
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid), what="daemon to die")
    assert dk("status", *daemons.loc()).returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ["start", "--umask", "9z"],
        ["start", "--backend", "systemd"],
        ["start", "--timeout", "-1"],
        ["start", "--user", "no-such-user-dk"],
        ["status", "--bogus"],
        ["stop", "extra"],
    ],
)
def test_wrong_arguments_exit_2_in_one_line(daemons: Daemons, args: list[str]) -> None:
    res = dk(*args, *daemons.loc())
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("daemonkit: ") and res.stderr.count("\n") == 1
    assert not daemons.pidfile.exists()


# -- sd_notify, seen on a socket this test owns ----------------------------------------------


class NotifySocket:
    """A datagram socket playing systemd's part: collects what the service sends."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5.0)

    def next(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines())

    def until(self, key: str) -> dict[str, str]:
        """The next message with *key*, skipping watchdog pings."""
        while True:
            msg = self.next()
            if key in msg:
                return msg


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_sd_notify_sequence(kind: str) -> None:
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    rdir = base / "run"
    address = str(base / "notify") if kind == "path" else f"\0dk-test-{os.getpid()}"
    listener = NotifySocket(address)
    env_addr = address if kind == "path" else "@" + address[1:]
    env = {**os.environ, "NOTIFY_SOCKET": env_addr, "WATCHDOG_USEC": "200000",
           "DAEMONKIT_TEST_HOOKS": "1"}  # fmt: skip
    proc = subprocess.Popen([*CLI, "run", "--runtime-dir", str(rdir)], env=env)
    try:
        ready = listener.until("READY")
        assert ready["READY"] == "1" and "serving" in ready["STATUS"]
        assert listener.next() == {"WATCHDOG": "1"}  # every 0.1 s: half of WATCHDOG_USEC
        with ControlClient(rdir) as c:
            assert c.request({"cmd": "test-stop-watchdog"}) == {"ok": True}
        time.sleep(0.3)
        listener.sock.settimeout(0.05)
        while True:  # drain the pings sent before the stop
            try:
                listener.next()
            except TimeoutError:
                break
        listener.sock.settimeout(5.0)
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        proc.send_signal(signal.SIGHUP)
        reloading = listener.next()  # no WATCHDOG=1 any more: this is the next message
        assert reloading["RELOADING"] == "1"
        assert before <= int(reloading["MONOTONIC_USEC"]) <= before + 5_000_000
        assert listener.next()["READY"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert listener.next() == {"STOPPING": "1"}
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
        listener.sock.close()
        subprocess.run(["rm", "-rf", str(base)], check=True)


def test_start_under_notify_socket_sends_mainpid(daemons: Daemons) -> None:
    listener = NotifySocket(str(daemons.base / "notify"))
    try:
        env = {**os.environ, "NOTIFY_SOCKET": str(daemons.base / "notify")}
        daemons.start(env=env)
        assert listener.next() == {"MAINPID": str(daemons.pid())}
        assert listener.next()["READY"] == "1"
        assert dk("stop", *daemons.loc()).returncode == 0
        assert listener.next() == {"STOPPING": "1"}
    finally:
        listener.sock.close()
