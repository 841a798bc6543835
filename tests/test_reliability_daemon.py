"""The demo daemon under faults, bad input and load, judged by what the kernel shows.

* Concurrent starts: 20 ``daemonkit start`` race on one runtime dir; the pidfile lock lets
  exactly one daemon live.
* Crashes: SIGKILL, then ``status`` (LSB 1) and a restart that replaces the dead socket.
* Bad input: at least 10,000 malformed control lines from a seeded generator (``SEED``; a
  failure names the line it sent), silent and slow clients, 200 connections at once; the
  daemon answers each line or closes in time, keeps serving, and its RSS stays flat.
* Load: 32 concurrent client processes per echo endpoint, every reply checked byte for byte.
  The default suite runs each endpoint for a short while; ``scripts/stress`` for 30 s.

Figures (messages sent, RSS growth, round trips per second, p99) are printed with ``-s``,
measured in the run; the thresholds are in the asserts.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import (  # noqa: F401 -- daemons_fixture is the daemons fixture
    CLI,
    Daemons,
    daemons_fixture,
    dk,
    gone,
    proc_status,
    read_pid,
    wait_until,
)

from daemonkit.errors import DaemonkitError
from daemonkit.service.client import ControlClient, NoAnswerError, request
from daemonkit.service.control import MAX_REQUEST

SEED = int(os.environ.get("DK_RELIABILITY_SEED", "20261127"))
IDLE = 2.0  # idle_timeout of the daemons started here, s
RSS_GROWTH_LIMIT = 4 << 20  # "a few MiB"


def _daemons_cmdlines(rdir: Path) -> list[int]:
    """Live processes whose command line is a daemonkit command on *rdir* (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"daemonkit" in argv and str(rdir).encode() in argv and not gone(int(entry)):
            found.append(int(entry))
    return found


# -- concurrent starts -------------------------------------------------------------------------


def test_twenty_concurrent_starts_leave_exactly_one_daemon(daemons: Daemons) -> None:
    starters = [
        subprocess.Popen(
            [*CLI, "start", *daemons.loc()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(20)
    ]
    outs = [(p.wait(timeout=60), *p.communicate()) for p in starters]
    survivor = daemons.pid()
    won = [o for o in outs if o[0] == 0]
    lost = [o for o in outs if o[0] != 0]
    assert len(won) == 1, outs
    assert won[0][1].startswith(f"daemonkit: started (pid {survivor}); ready "), outs
    assert len(lost) == 19
    for _code, out, err in lost:
        assert err == f"daemonkit: already running (pid {survivor})\n" and out == ""
    # The kernel's view: one live daemonkit process on this runtime dir, holding the lock.
    assert _daemons_cmdlines(daemons.rdir) == [survivor]
    res = dk("status", *daemons.loc())
    assert res.returncode == 0 and f"pid {survivor}" in res.stdout
    assert dk("stop", *daemons.loc()).returncode == 0
    wait_until(lambda: gone(survivor), what="the survivor to exit")
    assert os.listdir(daemons.rdir) == []


# -- crashes ---------------------------------------------------------------------------------


def test_sigkill_then_status_1_and_start_replaces_the_dead_socket(daemons: Daemons) -> None:
    """Three kill/restart cycles: each dead socket refuses connections, each start replaces it."""
    sock_path = daemons.rdir / "control.sock"
    for _ in range(3):
        daemons.start()
        pid = daemons.pid()
        pinned = daemons.base / "old.sock"
        os.link(sock_path, pinned)  # keeps the old inode in use: a new socket gets another
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda p=pid: gone(p), what="the daemon to die")
        res = dk("status", *daemons.loc())
        assert res.returncode == 1, res
        assert res.stdout == (
            f"daemonkit: dead, but pidfile {daemons.pidfile} remains (pid {pid})\n"
        )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(ConnectionRefusedError):  # a file, but nobody listens
            probe.connect(str(sock_path))
        probe.close()
        daemons.start()
        new = daemons.pid()
        assert new != pid and not os.path.samefile(sock_path, pinned)
        pinned.unlink()
        with ControlClient(daemons.rdir) as c:
            assert c.request({"cmd": "ping"}) == {"pong": True, "pid": new}
        assert not [e for e in os.listdir(daemons.rdir) if e.startswith(f"dk.{pid}.")]
        os.kill(new, signal.SIGKILL)  # the next cycle starts over a stale pidfile again
        wait_until(lambda p=new: gone(p), what="the daemon to die")
    daemons.start()
    assert dk("stop", *daemons.loc()).returncode == 0


# -- bad input -------------------------------------------------------------------------------


def _malformed(rng: random.Random) -> bytes:
    """One line (without its newline) the daemon must refuse; seeded, so it reproduces."""
    kind = rng.randrange(10)
    if kind == 0:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"")
    if kind == 1:  # invalid UTF-8 inside otherwise plausible JSON
        bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        return b'{"cmd": "' + bad + b'"}'
    if kind == 2:  # truncated or broken JSON
        good = json.dumps({"cmd": "ping", "x": rng.random()}).encode()
        return good[: rng.randrange(1, len(good))]
    if kind == 3:  # JSON that is not an object
        return json.dumps(rng.choice([1, "ping", None, True, [1, 2], [], 1.5])).encode()
    if kind == 4:  # wrong type for cmd
        return json.dumps({"cmd": rng.choice([1, None, [], {}, True, 2.5])}).encode()
    if kind == 5:  # huge numbers: beyond float range, beyond int-to-str digit limits
        digits = "9" * rng.choice([20, 400, 5000, 40000])
        return rng.choice([f'{{"cmd": {digits}}}', f'{{"cmd": "open", "max_size": {digits}}}',
                           '{"cmd": 1e999999}', f'{{"cmd": "open", "tid": -{digits}}}',
                           '{"cmd": "open", "endpoint": "posix-shm", "max_size": 1e308}',
                           '{"cmd": "open", "endpoint": "posix-shm", "max_size": -1}',
                           '{"cmd": "open", "endpoint": "signal", "tid": 18446744073709551617}',
                           ]).encode()  # fmt: skip
    if kind == 6:  # wrong types for the arguments of real commands
        bad = rng.choice([None, 1, [], {}, "x" * 300, -1, 2**70, 1.5, True])
        name = rng.choice(["endpoint", "max_size", "tid"])
        # tid matters to the signal endpoint only, max_size to posix-shm only
        msg: dict[str, object] = {
            "cmd": "open", "endpoint": "signal" if name == "tid" else "posix-shm",
            "max_size": 64,
        }  # fmt: skip
        msg[name] = bad
        if name == "max_size" and bad in (1, True):  # 1 byte is a valid size
            msg["max_size"] = -7
        if name == "endpoint" and bad == "x" * 300:
            msg["endpoint"] = "y" * 300
        return json.dumps(msg).encode()
    if kind == 7:  # deep nesting: a recursion bomb inside the limit on line length
        depth = rng.choice([100, 5000, 30000])  # 2 * 30000 bytes: under 64 KiB
        return b"[" * depth + b"]" * rng.choice([0, depth])
    if kind == 8:  # unknown commands, control characters, NUL bytes
        return json.dumps({"cmd": rng.choice(["", "\x00", "PING", "stop", "../etc", "é" * 50])}
                          ).encode()  # fmt: skip
    return b'{"cmd": "ping"' + b" " * rng.randrange(0, 50)  # unterminated object


def _exchange(path: Path, lines: list[bytes], timeout: float = 10.0) -> list[dict[str, object]]:
    """Send *lines* on one connection, pipelined, and read one reply per non-blank line."""
    want = sum(1 for line in lines if line.strip())
    data = b"".join(line + b"\n" for line in lines)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.setblocking(False)
        buf, replies, sent = b"", [], 0
        deadline = time.monotonic() + timeout
        while len(replies) < want:
            assert time.monotonic() < deadline, f"{len(replies)}/{want} replies in {timeout} s"
            wr = [s] if sent < len(data) else []
            r, w, _ = select.select([s], wr, [], 0.5)
            if w:
                with contextlib.suppress(BlockingIOError):  # the daemon is behind: later
                    sent += s.send(data[sent : sent + 65536])
            if r:
                chunk = s.recv(1 << 20)
                assert chunk, f"closed after {len(replies)}/{want} replies"
                buf += chunk
                *done, buf = buf.split(b"\n")
                replies += [json.loads(d) for d in done]
    return replies


def test_control_clients_wait_while_the_backlog_is_full(idle_daemon: Daemons) -> None:
    """Many clients at once queue in the listen backlog (16) instead of failing with EAGAIN;
    a daemon that accepts nothing (SIGSTOP) is "no answer" after the client's timeout."""
    d = idle_daemon
    pid = d.pid()
    held: list[socket.socket] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(40):  # fill the backlog: the stopped daemon accepts none of them
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(str(d.rdir / "control.sock"))
            except BlockingIOError:
                s.close()
                break
            held.append(s)
        assert 0 < len(held) < 40
        t0 = time.monotonic()
        with pytest.raises(NoAnswerError):
            ControlClient(d.rdir, timeout=0.5)
        assert 0.4 < time.monotonic() - t0 < 2.0
    finally:
        os.kill(pid, signal.SIGCONT)
        for s in held:
            s.close()
    # 40 clients while it is stopped: 16 wait in the backlog, the rest in connect(2); all
    # are answered once it runs again.
    replies: list[object] = []

    def ping() -> None:
        try:
            replies.append(request(d.rdir, {"cmd": "ping"}, timeout=10.0)["pid"])
        except DaemonkitError as exc:
            replies.append(str(exc))

    os.kill(pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=ping) for _ in range(40)]
        for t in threads:
            t.start()
        time.sleep(0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    for t in threads:
        t.join()
    assert replies == [pid] * 40


def _rss(pid: int) -> int:
    kib = proc_status(pid)["VmRSS"].split()[0]
    return int(kib) * 1024


@pytest.fixture
def idle_daemon(daemons: Daemons) -> Iterator[Daemons]:
    conf = daemons.base / "idle.toml"
    conf.write_text(f"idle_timeout = {IDLE}\n")
    daemons.start("--config", conf)
    yield daemons
    dk("stop", *daemons.loc())


def test_ten_thousand_malformed_lines_each_get_an_error(idle_daemon: Daemons) -> None:
    d = idle_daemon
    pid, path = d.pid(), d.rdir / "control.sock"
    rng = random.Random(SEED)
    _exchange(path, [_malformed(rng) for _ in range(300)])  # warm-up: code paths loaded
    rss_before = _rss(pid)
    sent = 0
    for batch in range(100):
        lines = [_malformed(rng) for _ in range(100)]
        replies = _exchange(path, lines)
        answered = [line for line in lines if line.strip()]
        for line, reply in zip(answered, replies, strict=True):
            assert list(reply) == ["error"], f"seed {SEED} batch {batch}: {line[:200]!r}"
        sent += len(lines)
    rss_after = _rss(pid)
    with ControlClient(d.rdir) as c:
        st = c.request({"cmd": "status"})
    assert st["pid"] == pid
    assert st["endpoints"]["control"]["errors"] >= sent
    assert dk("status", *d.loc()).returncode == 0
    growth = rss_after - rss_before
    print(f"\nmalformed lines: {sent}, RSS {rss_before >> 10} -> {rss_after >> 10} KiB")
    assert growth <= RSS_GROWTH_LIMIT, f"RSS grew {growth >> 10} KiB > {RSS_GROWTH_LIMIT >> 10}"


def test_oversized_lines_are_refused_and_the_connection_closed(idle_daemon: Daemons) -> None:
    d = idle_daemon
    pid = d.pid()
    rss_before = _rss(pid)
    for n, size in enumerate([MAX_REQUEST + 1, MAX_REQUEST * 2, 4 << 20] * 4):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(d.rdir / "control.sock"))
            s.settimeout(5.0)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                s.sendall(b"x" * size + b"\n")  # the daemon stops reading after the limit
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except ConnectionResetError:
                pass  # closed with our bytes unread: the kernel says "reset" after the reply
            assert (
                data
                == json.dumps({"error": f"request larger than {MAX_REQUEST} bytes"}).encode()
                + b"\n"
            ), (n, size, data[:200])
    assert dk("status", *d.loc()).returncode == 0
    growth = _rss(pid) - rss_before
    assert growth <= RSS_GROWTH_LIMIT, f"RSS grew {growth >> 10} KiB"


def test_silent_and_byte_per_second_clients_are_closed_in_time(idle_daemon: Daemons) -> None:
    """A client that never writes, or dribbles a request that never ends, is dropped within
    the idle timeout (+1 s for the loop's tick); meanwhile others are served."""
    d = idle_daemon
    path = str(d.rdir / "control.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        silent.connect(path)
        slow.connect(path)
        t0 = time.monotonic()
        closed: dict[str, float] = {}
        names = {silent: "silent", slow: "slow"}
        dribble = iter(b'{"cmd": "ping", "pad": "' + b"z" * 100)
        while len(closed) < 2 and time.monotonic() - t0 < IDLE + 5:
            if "slow" not in closed:
                try:
                    slow.send(bytes([next(dribble)]))  # one byte per second
                except (BrokenPipeError, ConnectionResetError):
                    closed["slow"] = time.monotonic() - t0
            waiting = [s for s in names if names[s] not in closed]
            r, _, _ = select.select(waiting, [], [], 1.0)
            for s in r:
                if s.recv(4096) == b"":
                    closed[names[s]] = time.monotonic() - t0
            with ControlClient(d.rdir, timeout=1.0) as c:
                assert c.request({"cmd": "ping"})["pong"]
            if r:
                time.sleep(max(0.0, 1.0 - (time.monotonic() - t0) % 1.0))
        print(f"\nclosed after (s): {closed}")
        assert set(closed) == {"silent", "slow"}, closed
        assert all(t <= IDLE + 1.5 for t in closed.values()), closed
    finally:
        silent.close()
        slow.close()


def test_two_hundred_connections_at_once(idle_daemon: Daemons) -> None:
    d = idle_daemon
    pid = d.pid()
    rng = random.Random(SEED + 1)
    rss_before = _rss(pid)
    conns = []
    try:
        for _ in range(200):  # all open at the same time; connect waits while the backlog is full
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(d.rdir / "control.sock"))  # blocking: waits for room in the backlog
            s.settimeout(5.0)
            conns.append(s)
        lines = [_malformed(rng).replace(b"\n", b"") + b"\n" for _ in conns]
        lines = [line if line.strip() else b"{\n" for line in lines]
        for s, line in zip(conns, lines, strict=True):
            s.sendall(line)
        for s, line in zip(conns, lines, strict=True):
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                assert chunk, f"closed without a reply to {line[:100]!r}"
                data += chunk
            assert list(json.loads(data)) == ["error"], line[:100]
        # A well-formed request on each of the 200 still works.
        for s in conns:
            s.sendall(b'{"cmd": "ping"}\n')
        for s in conns:
            assert json.loads(s.recv(4096)) == {"pong": True, "pid": pid}
        with ControlClient(d.rdir) as c:
            assert c.request({"cmd": "status"})["endpoints"]["control"]["clients"] == 201
    finally:
        for s in conns:
            s.close()
    wait_until(
        lambda: request(d.rdir, {"cmd": "status"})["endpoints"]["control"]["clients"] == 1,
        what="the daemon to see the 200 closes",
    )
    growth = _rss(pid) - rss_before
    assert growth <= RSS_GROWTH_LIMIT, f"RSS grew {growth >> 10} KiB"


# -- load --------------------------------------------------------------------------------------

# Runs in a fresh interpreter: forks CLIENTS processes (before any thread exists), each opens the
# endpoint through open_endpoint() and does round trips until the deadline, checking every reply.
_LOAD_WORKER = r"""
import array, json, os, random, struct, sys, time
from pathlib import Path
from daemonkit.errors import ChannelError
from daemonkit.service.client import open_endpoint
# Imported once here, not in every forked client (open_endpoint imports them lazily).
import daemonkit.service.endpoints.shm, daemonkit.service.endpoints.signal_ep
import daemonkit.service.endpoints.zmq_ipc

rdir, names = Path(sys.argv[1]), sys.argv[2].split(",")
seconds, clients = float(sys.argv[3]), int(sys.argv[4])
MAX = 4096

def payload_client(name, cid, end, deadline, samples):
    ok = bad = 0
    rbuf = memoryview(bytearray(MAX))
    rng = random.Random(cid)
    seq = 0
    while seq == 0 or time.monotonic() < deadline:  # at least one: every client is checked
        size = rng.randrange(16, MAX + 1)
        msg = cid.to_bytes(4, "little") + seq.to_bytes(8, "little")
        msg += rng.randbytes(size - len(msg))
        t0 = time.perf_counter_ns()
        end.send(memoryview(msg))
        n = end.recv_into(rbuf)
        samples.append(time.perf_counter_ns() - t0)
        if n == size and rbuf[:n] == msg:
            ok += 1
        else:
            bad += 1  # corrupted, short, or another message's (duplicated) bytes
        seq += 1
    end.close()
    return ok, bad

def signal_client(name, cid, end, deadline, samples):
    ok = 0
    while time.monotonic() < deadline:  # one client at a time: take turns
        try:
            end = open_endpoint(rdir, name, 0)
        except ChannelError:
            time.sleep(0.002)
            continue
        with end:
            for _ in range(50):
                t0 = time.perf_counter_ns()
                end.post()
                end.wait()
                samples.append(time.perf_counter_ns() - t0)
                ok += 1
    return ok, 0

ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
t_open = time.monotonic()
pipes = []
for name, cid in [(n, c) for n in names for c in range(clients)]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        samples = array.array("q")
        try:
            # Open first (the daemon makes this client's objects), then wait for the start:
            # the timed window begins only when all 32 are attached.
            end = None if name == "signal" else open_endpoint(rdir, name, MAX)
            os.write(ready_w, b"r")
            (deadline,) = struct.unpack("d", os.read(go_r, 8))
            run = signal_client if name == "signal" else payload_client
            ok, bad = run(name, cid, end, deadline, samples)
            out = {"ok": ok, "bad": bad, "error": None}
        except Exception as exc:
            os.write(ready_w, b"e")
            out = {"ok": 0, "bad": 0, "error": repr(exc)}
        blob = json.dumps(out).encode() + b"\n" + samples.tobytes()
        with os.fdopen(w, "wb") as f:
            f.write(blob)
        os._exit(0)
    os.close(w)
    pipes.append((name, pid, r))
got = b""
while len(got) < len(pipes):
    got += os.read(ready_r, len(pipes))
attach_s = time.monotonic() - t_open
os.write(go_w, struct.pack("d", time.monotonic() + seconds) * len(pipes))
report = {}
for name, pid, r in pipes:
    with os.fdopen(r, "rb") as f:
        head = f.readline()
        got = array.array("q")
        got.frombytes(f.read())
    os.waitpid(pid, 0)
    rep = report.setdefault(name, {"clients": [], "samples": array.array("q")})
    rep["clients"].append(json.loads(head))
    rep["samples"].extend(got)
for name, rep in report.items():
    samples = sorted(rep.pop("samples"))
    rep.update({
        "attach_s": attach_s,
        "round_trips": len(samples),
        "rate": len(samples) / seconds,
        "p50_us": samples[len(samples) // 2] / 1e3 if samples else None,
        "p99_us": samples[int(len(samples) * 0.99)] / 1e3 if samples else None,
    })
print(json.dumps(report))
"""

ENDPOINTS = ["unix-stream", "fifo", "zmq-ipc", "posix-shm", "signal"]


def _load(d: Daemons, names: list[str], seconds: float) -> dict[str, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_WORKER, str(d.rdir), ",".join(names), str(seconds), "32"],
        capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return out


def _check_load(d: Daemons, seconds: float, together: bool) -> None:
    """*together*: all endpoints at once (5 x 32 clients); else one endpoint after another."""
    d.start()
    try:
        pid = d.pid()
        files = sorted(os.listdir(d.rdir))
        runs = [ENDPOINTS] if together else [[name] for name in ENDPOINTS]
        for names in runs:
            for name, out in _load(d, names, seconds).items():
                clients = out["clients"]
                assert len(clients) == 32
                errors = [c["error"] for c in clients if c["error"]]
                assert not errors, f"{name}: {errors[:3]}"
                bad = sum(c["bad"] for c in clients)
                ok = sum(c["ok"] for c in clients)
                assert bad == 0, f"{name}: {bad} corrupted or duplicated replies of {ok + bad}"
                assert ok == out["round_trips"] and ok > 0
                served = [c for c in clients if c["ok"] > 0]
                print(
                    f"\nload {name}: 32 clients ({len(served)} served, all attached in"
                    f" {out['attach_s']:.1f} s) {seconds:g} s: {ok} round trips,"
                    f" {out['rate']:.0f}/s, p50 {out['p50_us']:.0f} us, p99 {out['p99_us']:.0f} us"
                )
                if name != "signal":  # signal serves one client at a time, by design
                    assert len(served) == 32
            assert request(d.rdir, {"cmd": "status"})["pid"] == pid
        # Every per-client object was removed when its client closed.
        assert sorted(os.listdir(d.rdir)) == files
        assert not [e for e in os.listdir("/dev/shm") if e.startswith(f"dk.{pid}.")]
    finally:
        dk("stop", *d.loc())


def test_load_32_clients_per_endpoint_short(daemons: Daemons) -> None:
    _check_load(daemons, 2.0, together=True)


@pytest.mark.stress
def test_load_32_clients_per_endpoint_30s(daemons: Daemons) -> None:
    _check_load(daemons, 30.0, together=False)
