"""``daemonkit serve``, ``bench --connect`` and ``throughput`` over loopback: a real server
process, real sockets, and what the kernel shows of it (its memory, its open connections)."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from facilities import need
from netns import ready_line, serve_ports

from daemonkit.cli import main

DK = [sys.executable, "-m", "daemonkit"]
MAX = 1 << 20  # the test server's --max-size


class Served:
    def __init__(self, proc: subprocess.Popen[str], zmq_port: int, tcp_port: int | None) -> None:
        self.proc = proc
        self.zmq_url = f"tcp://127.0.0.1:{zmq_port}"
        self.tcp_port = tcp_port

    def info(self) -> dict[str, object]:
        from daemonkit.remote.client import RemoteServer
        from daemonkit.remote.wire import parse_address

        with RemoteServer(parse_address(self.zmq_url), timeout=3) as server:
            return server.info()

    def peak_rss_kib(self) -> int:
        """VmHWM: the most resident memory the server process ever had (proc(5))."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def tcp_echo(self, payload: bytes, timeout: float = 3.0) -> bytes:
        assert self.tcp_port is not None
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=timeout) as s:
            s.sendall(struct.pack("!I", len(payload)) + payload)
            return _recv_frame(s)


def _recv_frame(s: socket.socket) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("end of file")
        data += chunk
    return data[4:]


def tcp_counters(served: Served) -> dict[str, int]:
    counters: Any = served.info()["counters"]
    return dict(counters["tcp"])


def start_serve(*extra: str) -> Served:
    argv = [*DK, "serve", "--bind", "tcp://127.0.0.1:0", "--max-size", "1M", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return Served(proc, *serve_ports(ready_line(proc, 10)))
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def stop_serve(served: Served, sig: int = signal.SIGTERM) -> tuple[int, str]:
    if served.proc.poll() is None:
        served.proc.send_signal(sig)
    try:
        _, err = served.proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.communicate()
        raise
    return served.proc.returncode, err


@pytest.fixture
def served() -> Iterator[Served]:
    s = start_serve("--tcp-port", "0", "--max-connections", "2")
    try:
        yield s
    finally:
        code, err = stop_serve(s)
        assert code == 0, err


def dk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DK, *args], capture_output=True, text=True, timeout=timeout)


# -- the command line -----------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (no interpreter start-up): exit code, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help, usage errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_says_loopback_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "serve", "--help")
    assert "loopback" in out and "127.0.0.1" in out
    assert "--connect" in cli(capsys, "bench", "--help")[1]


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--bind", "http://127.0.0.1:1"],
        ["serve", "--bind", "tcp://example.org:80"],
        ["serve", "--bind", "tcp://127.0.0.1:99999"],
        ["serve", "--max-size", "abc"],
        ["serve", "--bind", "tcp://127.0.0.1:65535"],
        ["bench", "--connect", "tcp://localhost"],
        ["bench", "--connect", "tcp://127.0.0.1:1", "--channels", "pipe"],
    ],
)
def test_bad_arguments_give_one_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daemonkit: "), err


def test_bind_in_use_is_one_line_error(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "serve", "--bind", served.zmq_url, "--tcp-port", "none")
    assert code == 1
    assert err.startswith("daemonkit: cannot bind") and len(err.splitlines()) == 1, err


# -- round trips with the runner's statistics, JSON and --compare ---------------------------


def test_bench_connect_writes_the_local_document(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "remote.json"
    argv = ["bench", "--connect", served.zmq_url, "--sizes", "0,4K,2M"]
    r = dk(*argv, "--iterations", "300", "--warmup", "30", "--json", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "daemonkit.bench/1"
    assert doc["options"]["connect"] == served.zmq_url
    assert doc["machine"]["remote_peer"]["hostname"] == socket.gethostname()
    measured = {(x["channel"], x["size"]): x for x in doc["results"] if x["latency_ns"]}
    assert set(measured) == {("zmq-tcp", 0), ("zmq-tcp", 4096), ("tcp", 0), ("tcp", 4096)}
    for res in measured.values():
        assert res["peer"] == "remote" and res["error"] is None
        assert res["iterations"] == 300 and res["verified"]["sizes"] == 300
        assert res["size"] == 0 or res["verified"]["checksums"] >= 1
        lat = res["latency_ns"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
        # Each echo blocks the server in recv or poll once at least: the kernel counts it.
        # the serve process blocked in recv for some round trips (fewer under load: a message
        # may already wait when it polls), and its counts were read back
        assert res["ctx_switches_per_roundtrip"]["voluntary"]["peer"] > 0
    skipped = [x for x in doc["results"] if x["skipped"]]
    assert {x["size"] for x in skipped} == {2 << 20}  # above the server's --max-size
    assert all("limit" in x["skipped"] for x in skipped)
    assert "tcp" in r.stdout and "remote" in r.stdout  # the usual table

    # The server echoed what the client verified (warm-up and one re-warm per batch included).
    counters: Any = served.info()["counters"]
    assert counters["zmq"]["echoes"] >= 2 * 330 and counters["tcp"]["echoes"] >= 2 * 330

    again = dk(*argv, "--iterations", "100", "--warmup", "10", "--compare", str(out))
    assert again.returncode == 0, again.stderr
    assert "this run against" in again.stdout and "new/old" in again.stdout
    assert "no case was measured in both runs" not in again.stdout


def test_no_server_is_a_one_line_error() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = dk("bench", "--connect", f"tcp://127.0.0.1:{port}", timeout=30)
    assert r.returncode == 1
    assert (
        r.stderr == f"daemonkit: no daemonkit serve at tcp://127.0.0.1:{port}: Connection refused\n"
    )


def test_unwritable_json_is_a_one_line_error(served: Served) -> None:
    r = dk("throughput", "--connect", served.zmq_url, "--sizes", "64", "--count", "10",
           "--json", "/proc/no-such-dir/thr.json")  # fmt: skip
    assert r.returncode == 1
    expected = "daemonkit: cannot write /proc/no-such-dir/thr.json: No such file or directory\n"
    assert r.stderr == expected


def test_a_listener_that_never_answers_times_out() -> None:
    from daemonkit.remote.client import NoServerError, RemoteServer
    from daemonkit.remote.wire import Address

    with socket.create_server(("127.0.0.1", 0)) as s:  # the kernel accepts, nobody answers
        port = s.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(NoServerError, match=r"no daemonkit serve answered at .* within 1 s"):
            RemoteServer(Address("127.0.0.1", port), timeout=1.0)
        assert time.monotonic() - t0 < 3


def test_throughput_counts_and_rates_agree(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "thr.json"
    r = dk("throughput", "--connect", served.zmq_url, "--sizes", "1K,64K,2M", "--count", "400",
           "--json", str(out))  # fmt: skip
    assert r.returncode == 1, r.stderr  # 2M is above the server's --max-size
    doc = json.loads(out.read_text())
    assert doc["schema"] == "daemonkit.throughput/1"
    *measured, refused = doc["results"]
    assert refused["size"] == 2 << 20 and "limit" in refused["error"]
    assert "FAILED  zmq-tcp 2 MiB" in r.stdout
    for row in measured:
        assert row["verified"] == {"messages": 400, "bytes": 400 * row["size"]}
        assert row["messages_per_s"] == pytest.approx(400 / row["seconds"], rel=1e-3)
        assert row["mb_per_s"] == pytest.approx(row["messages_per_s"] * row["size"] / 1e6, 1e-3)
        assert 0 < row["tail_ns"] < row["seconds"] * 1e9
    assert "MB/s" in r.stdout


# -- limits: a stray client cannot exhaust the server's memory ----------------------------


def test_tcp_message_above_max_size_is_refused(served: Served) -> None:
    before = served.peak_rss_kib()
    sent = 0
    with socket.create_connection(("127.0.0.1", served.tcp_port or 0), timeout=3) as s:
        s.sendall(struct.pack("!I", 1 << 30))  # claims 1 GiB...
        with contextlib.suppress(OSError):  # ...and pushes 32 MiB of it until the RST comes
            while sent < 32 << 20:
                sent += s.send(bytes(1 << 20))
        with pytest.raises(OSError):
            _recv_frame(s)  # closed (EOF or RST): never an echo
    # A server that took the bytes in would have made every page of them resident (VmHWM).
    assert served.peak_rss_kib() - before < 8 << 10  # < 8 MiB more, far from 32 MiB
    assert tcp_counters(served)["refused"] == 1
    assert served.tcp_echo(b"still serving") == b"still serving"


def test_zmq_message_above_max_size_is_refused(served: Served) -> None:
    before = served.peak_rss_kib()
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(served.zmq_url)
        s.send(bytes(32 << 20))  # an echo of 32 MiB against a 1 MiB ZMQ_MAXMSGSIZE
        assert s.poll(1500) == 0  # libzmq dropped the connection: no echo comes back
        s.close()
    finally:
        ctx.destroy(linger=0)
    assert served.peak_rss_kib() - before < 8 << 10  # the 32 MiB never sat in the server
    port = int(served.zmq_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as stray:  # not ZeroMQ at all
        stray.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert served.info()["hwm"] == 64  # meanwhile others are served as before
    info = served.info()
    assert info["max_size"] == MAX and info["hwm"] == 64  # 64 MiB / 1 MiB per queue
    assert info["counters"]["zmq"]["echoes"] == 0  # type: ignore[index]


def test_tcp_connection_limit(served: Served) -> None:
    port = served.tcp_port or 0
    held = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(2)]
    try:
        for s in held:  # each has its thread: both are served
            s.sendall(struct.pack("!I", 3) + b"abc")
            assert _recv_frame(s) == b"abc"
        with socket.create_connection(("127.0.0.1", port), timeout=3) as extra:
            assert extra.recv(16) == b""  # the third was accepted and closed: end of file
        assert tcp_counters(served) == {
            "echoes": 2, "refused": 1, "open": 2, "accept_backoffs": 0,
        }  # fmt: skip
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 3
    while True:  # the server sees the closes and frees the slots
        try:
            assert served.tcp_echo(b"x") == b"x"
            break
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(sig: int) -> None:
    s = start_serve("--tcp-port", "0")
    client = socket.create_connection(("127.0.0.1", s.tcp_port or 0), timeout=3)
    try:
        client.sendall(struct.pack("!I", 2) + b"hi")
        assert _recv_frame(client) == b"hi"  # a connection thread is running
        t0 = time.monotonic()
        code, err = stop_serve(s, sig)
        assert code == 0 and time.monotonic() - t0 < 3, err
        assert f"{signal.Signals(sig).name}: stopping" in err and "Traceback" not in err
        assert client.recv(16) == b""  # its connection was shut down, not left half-open
    finally:
        client.close()
    for port in (s.tcp_port, int(s.zmq_url.rsplit(":", 1)[1])):
        with socket.socket() as probe:  # both ports are free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port or 0))


def test_compare_remote_with_local_peers(served: Served, tmp_path: Path) -> None:
    local = tmp_path / "local.json"
    common = ["--channels", "zmq-tcp,tcp", "--sizes", "64", "--iterations", "200"]
    r = dk("bench", *common, "--peer", "process", "--warmup", "20", "--json", str(local))
    assert r.returncode == 0, r.stderr
    r = dk("bench", "--connect", served.zmq_url, *common, "--compare", str(local))
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "remote vs process" in line]
    assert len(rows) == 2, r.stdout  # zmq-tcp and tcp, each remote against its local peer


def _established(port: int) -> int:
    """Established TCP connections on the server's side of *port*, as the kernel lists them."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return len(out.splitlines())


def test_client_killed_mid_run_leaves_server_serving(served: Served) -> None:
    port = served.tcp_port or 0
    argv = [*DK, "bench", "--connect", served.zmq_url, "--channels", "tcp", "--duration", "30"]
    client = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while _established(port) == 0:  # the run is under way
            assert time.monotonic() < deadline and client.poll() is None
            time.sleep(0.05)
    finally:
        client.kill()
        client.wait()
    deadline = time.monotonic() + 3
    while _established(port):  # the kernel closed its socket; the server's thread follows
        assert time.monotonic() < deadline, "the server kept a dead client's connection"
        time.sleep(0.05)
    assert served.tcp_echo(b"next") == b"next"


def test_ctrl_c_ends_a_remote_run(served: Served) -> None:
    argv = [*DK, "bench", "--connect", served.zmq_url, "--duration", "30"]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # connected and measuring
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=5)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 130, err
    assert err.strip().splitlines()[-1] == "daemonkit: interrupted"


def test_idle_tcp_client_loses_its_slot() -> None:
    s = start_serve("--tcp-port", "0", "--max-connections", "1", "--idle-timeout", "0.3")
    try:
        with socket.create_connection(("127.0.0.1", s.tcp_port or 0), timeout=3) as idle:
            t0 = time.monotonic()
            assert idle.recv(16) == b""  # SO_RCVTIMEO expired in the server: closed
            assert 0.2 < time.monotonic() - t0 < 2.5
        assert s.tcp_echo(b"mine now") == b"mine now"  # the only slot is free again
    finally:
        code, err = stop_serve(s)
    assert code == 0, err


def test_a_server_that_stops_answering_fails_the_case_in_bounded_time(served: Served) -> None:
    argv = [*DK, "bench", "--connect", served.zmq_url, "--channels", "tcp", "--duration", "30"]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while _established(served.tcp_port or 0) == 0:  # measuring
            assert time.monotonic() < deadline and client.poll() is None
            time.sleep(0.05)
        served.proc.send_signal(signal.SIGSTOP)  # the server freezes mid-run
        t0 = time.monotonic()
        out, _ = client.communicate(timeout=15)
        waited = time.monotonic() - t0
    finally:
        served.proc.send_signal(signal.SIGCONT)
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 1 and waited < 12  # the 5 s reply timeout, not the 30 s run
    # Frozen during an echo or during the between-batches request for its counters:
    assert re.search(r"FAILED  tcp remote 64 B: .*(no reply from|no daemonkit serve ans)", out)


def test_ipv6_loopback() -> None:
    need("ipv6")
    argv = [*DK, "serve", "--bind", "tcp://[::1]:0", "--tcp-port", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ready_line(proc, 10)
    s = Served(proc, *serve_ports(line))
    try:
        assert "tcp on [::1]:" in line
        url = s.zmq_url.replace("127.0.0.1", "[::1]")
        r = dk("bench", "--connect", url, "--iterations", "100", "--warmup", "10")
        assert r.returncode == 0, r.stderr
        assert r.stdout.count(" remote ") == 2  # zmq-tcp and tcp rows
    finally:
        code, err = stop_serve(s)
    assert code == 0, err
