"""No exhausted resource and no single client stops the daemon or one of its endpoints.

Each fault is made for real, on the running daemon: a log on a tmpfs filled to the last
byte (mount(8) ``-o size=``), ``/dev/full`` as the log, ``RLIMIT_NOFILE`` lowered on the live
daemon with prlimit(2) and more connections than it allows, ``RLIMIT_NPROC`` lowered so that
pthread_create(3) fails. After each: the daemon is alive, ``status`` reports it with every
endpoint answering a real round trip, and it counted what happened (``status --json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import Daemons, daemons_fixture, dk, gone, wait_until  # noqa: F401
from facilities import require

from daemonkit.channels.base import NotifyEnd, PayloadEnd
from daemonkit.cleanup import list_objects
from daemonkit.errors import ChannelError
from daemonkit.service.client import open_endpoint

ENDPOINTS = ["unix-stream", "fifo", "zmq-ipc", "signal", "posix-shm"]


def round_trip(rdir: Path, name: str) -> None:
    """One real echo (or notification) through the daemon's endpoint *name*."""
    with open_endpoint(rdir, name, 64) as end:
        if isinstance(end, NotifyEnd):
            end.post()
            end.wait()
            return
        assert isinstance(end, PayloadEnd)
        msg = os.urandom(64)
        end.send(memoryview(msg))
        buf = bytearray(64)
        assert end.recv_into(memoryview(buf)) == 64 and bytes(buf) == msg


def healthy(d: Daemons, pid: int, endpoints: list[str] = ENDPOINTS) -> dict[str, object]:
    """status says running (exit 0), and every endpoint answers; the status document."""
    assert not gone(pid), "the daemon died"
    res = dk("status", "--json", *d.loc())
    assert res.returncode == 0, res.stdout + res.stderr
    for name in endpoints:
        round_trip(d.rdir, name)
    doc: dict[str, object] = json.loads(res.stdout)["status"]
    return doc


def _second_user() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        require("second-user", "acting as a second user needs root and setpriv")
    if not os.access("/usr/bin/python3", os.X_OK):
        require("second-user", "the second user needs /usr/bin/python3 (it cannot read ours)")


def _needs_root(what: str) -> None:
    if os.geteuid() != 0:
        require("root", f"needs root to {what}")


# -- the log --------------------------------------------------------------------------------


def test_start_with_dev_full_as_log_says_why_and_leaves_nothing(daemons: Daemons) -> None:
    res = daemons.start("--log-file", "/dev/full", check=False)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip() == "daemonkit: log file /dev/full: No space left on device"
    assert os.listdir(daemons.rdir) == []  # no control.sock, pidfile or endpoint socket


@pytest.fixture
def tiny_tmpfs(daemons: Daemons) -> Iterator[Path]:
    _needs_root("mount a tmpfs")
    mnt = daemons.base / "logfs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        require("root", f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path) -> None:
    """Write until the file system says ENOSPC: not one more byte fits, not even in the
    last page of the log (a tmpfs gives out whole pages)."""
    for name, chunk in (("filler", 4096), ("filler", 1), ("daemon.log", 1)):
        with open(mnt / name, "ab", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * chunk)


def test_a_full_log_disk_is_counted_not_fatal(daemons: Daemons, tiny_tmpfs: Path) -> None:
    daemons.start("--log-file", tiny_tmpfs / "daemon.log")
    pid = daemons.pid()
    _fill(tiny_tmpfs)
    for _ in range(3):  # each reload writes a log line, and SIGHUP reopens the log
        res = dk("reload", *daemons.loc())
        assert res.returncode == 0, res.stderr
    doc = healthy(daemons, pid)
    log = doc["log"]
    assert isinstance(log, dict) and log["failures"] >= 3, log
    assert log["last_error"] == "No space left on device"
    (tiny_tmpfs / "filler").unlink()  # room again: lines are written again
    assert dk("reload", *daemons.loc()).returncode == 0
    assert "reloaded" in (tiny_tmpfs / "daemon.log").read_text().splitlines()[-1]


# -- descriptors ----------------------------------------------------------------------------


def _connect_many(path: Path, n: int) -> list[socket.socket]:
    """Up to *n* connections; a full backlog gives EAGAIN at once (non-blocking connect)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(str(path))
        except (BlockingIOError, ConnectionRefusedError):
            s.close()
            continue
        socks.append(s)
    return socks


def test_nofile_32_and_a_hundred_connections(daemons: Daemons) -> None:
    daemons.start()
    pid = daemons.pid()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (32, 32))  # ulimit -n 32, on the live daemon
    stream = next(daemons.rdir.glob(f"dk.{pid}.unix-stream.*"))
    control = _connect_many(daemons.rdir / "control.sock", 100)
    socks = control + _connect_many(stream, 100)
    try:
        wait_until(lambda: "accept: Too many open files" in _log_of(daemons), timeout=5,
                   what="the unix-stream endpoint to meet EMFILE")  # fmt: skip
        # the control clients past the limit are answered through the spare, not left queued
        last = control[-1]
        last.setblocking(True)
        last.settimeout(5)
        assert last.recv(200) == b'{"error": "daemon: out of descriptors (EMFILE)"}\n'
    finally:
        for s in socks:
            s.close()
    doc = healthy(daemons, pid)  # still under nofile 32
    limits = doc["limits"]
    assert isinstance(limits, dict) and limits["control_clients_out_of_fds"] > 0, limits
    endpoints = doc["endpoints"]
    assert isinstance(endpoints, dict) and endpoints["unix-stream"]["accept_backoffs"] > 0


def _fill_backlog(path: Path) -> list[socket.socket]:
    """Connect until the listen queue is full and stays full for 0.3 s (nobody accepts)."""
    socks: list[socket.socket] = []
    for _ in range(20):
        more = _connect_many(path, 64)
        socks += more
        if not more and socks:
            time.sleep(0.3)
            if not (more := _connect_many(path, 1)):
                return socks
            socks += more
    raise AssertionError("the listen queue never stayed full: the daemon still accepts")


def _log_of(d: Daemons) -> str:
    path = d.base / "daemon.log"
    return path.read_text() if path.exists() else ""


@pytest.fixture(autouse=True)
def _log_in_base(daemons: Daemons, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every daemon of this module logs to BASE/daemon.log unless the test says otherwise."""
    start = daemons.start

    def with_log(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
        if "--log-file" not in args:
            args = (*args, "--log-file", daemons.base / "daemon.log")
        return start(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(daemons, "start", with_log)


# -- threads ----------------------------------------------------------------------------------


def _tasks_of(uid: int) -> int:
    """Threads of every process of *uid*: what RLIMIT_NPROC counts."""
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}").st_uid == uid:
                n += len(os.listdir(f"/proc/{entry}/task"))
    return n


def test_thread_creation_refused_refuses_the_client_and_undoes(daemons: Daemons) -> None:
    _second_user()  # RLIMIT_NPROC does not bind root: the daemon runs as nobody
    nobody = pwd.getpwnam("nobody").pw_uid
    daemons.base.chmod(0o711)  # nobody must reach its runtime dir
    daemons.start("--user", "nobody")
    pid = daemons.pid()
    before = set(os.listdir(daemons.rdir))
    limit = _tasks_of(nobody)
    _prlimit_as(nobody, pid, f"--nproc={limit}:")  # the soft limit: no new thread for nobody
    try:
        for name in ("fifo", "posix-shm"):
            with pytest.raises(ChannelError, match="cannot start a thread"):
                round_trip(daemons.rdir, name)
        stream = next(daemons.rdir.glob(f"dk.{pid}.unix-stream.*"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(stream))
            s.settimeout(5)
            assert s.recv(1) == b""  # refused: closed at once, no thread to serve it
        assert set(os.listdir(daemons.rdir)) == before  # no FIFO left of the refused client
        assert [o for o in list_objects() if o.owner == pid] == []  # no segment, semaphore
    finally:
        _prlimit_as(nobody, pid, f"--nproc={_hard_nproc(pid)}:")  # soft back to the hard one
    # nobody may not signal this (root's) process: the signal endpoint says so at open.
    with pytest.raises(ChannelError, match="another user's"):
        round_trip(daemons.rdir, "signal")
    healthy(daemons, pid, [e for e in ENDPOINTS if e != "signal"])


def _hard_nproc(pid: int) -> str:
    """The hard RLIMIT_NPROC of *pid*, as /proc/PID/limits shows it (prlimit(2) would need
    CAP_SYS_RESOURCE even to read another user's)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max processes"):
            return line.split()[3]
    raise AssertionError("no 'Max processes' in /proc/PID/limits")


def _prlimit_as(uid: int, pid: int, limit: str) -> None:
    """prlimit(1) run as the target's own user: another user's limits need CAP_SYS_RESOURCE,
    which a container's root may lack; lowering one's own soft limit, or raising it back up
    to the hard one, needs nothing."""
    res = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         "prlimit", f"--pid={pid}", limit],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr


# -- shared memory ------------------------------------------------------------------------------


def test_a_client_cannot_shrink_the_segment_under_the_daemon(daemons: Daemons) -> None:
    """The old attack: ftruncate the segment to 0, then post. The buffer is a sealed memfd
    passed over the socket: no name to open, and the kernel refuses the ftruncate itself."""
    import posix_ipc

    from daemonkit.service.client import ControlClient

    daemons.start()
    pid = daemons.pid()
    with ControlClient(daemons.rdir) as control:
        reply = control.request({"cmd": "open", "endpoint": "posix-shm", "max_size": 4096})
        fd = control.take_fd()
        assert fd is not None, reply
        try:
            assert not any(n.startswith(f"dk.{pid}.posix-shm.") for n in os.listdir("/dev/shm"))
            for size in (0, 8, 1 << 20):
                with pytest.raises(PermissionError):
                    os.ftruncate(fd, size)  # F_SEAL_SHRINK / F_SEAL_GROW: EPERM for everyone
            # A length word claiming far more than the buffer, then the post.
            os.pwrite(fd, (2**63).to_bytes(8, "little"), 0)
            posix_ipc.Semaphore(f"{reply['name']}.to-server").release()
            done = posix_ipc.Semaphore(f"{reply['name']}.to-client")
            done.acquire(5)  # the daemon clipped the length to its buffer and answered
        finally:
            os.close(fd)
    healthy(daemons, pid)


# -- the runtime dir ----------------------------------------------------------------------------


def test_a_swapped_ancestor_redirects_no_unlink(daemons: Daemons) -> None:
    """Root's daemon in ``P/run`` where another user owns ``P``: that user renames ``run``
    away and puts a symlink to a root-only directory in its place, holding decoys named like
    the daemon's files. At SIGTERM the daemon removes its own files, where they really are,
    and not one decoy (it works through the descriptor of the directory it opened)."""
    _second_user()
    nobody = pwd.getpwnam("nobody").pw_uid
    parent = daemons.base / "p"
    parent.mkdir()
    os.chown(parent, nobody, nobody)
    daemons.base.chmod(0o711)
    rdir = parent / "run"
    res = dk("start", "--runtime-dir", rdir, "--log-file", daemons.base / "daemon.log")
    assert res.returncode == 0, res.stderr
    pid = int((rdir / "daemonkit.pid").read_text())
    daemons.pids.add(pid)
    names = sorted(os.listdir(rdir))
    assert "control.sock" in names and any(".unix-stream." in n for n in names), names
    decoys = daemons.base / "rootonly"
    decoys.mkdir(mode=0o700)
    for name in names:
        (decoys / name).write_text(f"{pid}\n")  # a pidfile decoy holds the daemon's own pid
    swap = (
        "import os, sys; p = sys.argv[1]; "
        "os.rename(p + '/run', p + '/away'); os.symlink(sys.argv[2], p + '/run')"
    )
    out = subprocess.run(
        ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
         "/usr/bin/python3", "-c", swap, str(parent), str(decoys)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    os.kill(pid, 15)
    wait_until(lambda: gone(pid), what="the daemon to stop")
    assert sorted(os.listdir(decoys)) == names  # not one decoy removed
    assert os.listdir(parent / "away") == []  # its own files removed, where they really were


# -- serve ---------------------------------------------------------------------------------------


def test_serve_lives_through_emfile() -> None:
    """``serve`` with RLIMIT_NOFILE a few above what it holds, and 40 TCP clients at once."""
    from test_remote import start_serve, stop_serve, tcp_counters

    s = start_serve("--tcp-port", "0", "--max-connections", "64")
    try:
        pid = s.proc.pid
        limit = len(os.listdir(f"/proc/{pid}/fd")) + 4
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
        assert s.tcp_port is not None
        conns = [socket.create_connection(("127.0.0.1", s.tcp_port), timeout=3) for _ in range(40)]
        try:  # serve at its limit: its next accept(2) fails with EMFILE
            wait_until(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= limit, timeout=5,
                       what="serve to reach its descriptor limit")  # fmt: skip
            time.sleep(0.5)  # a few accept attempts, backing off
            assert s.proc.poll() is None, "serve died"
        finally:
            for c in conns:
                c.close()
        wait_until(lambda: _answers(s.tcp_echo), timeout=5, what="serve to answer again")
        assert tcp_counters(s)["accept_backoffs"] > 0
    finally:
        code, err = stop_serve(s)
    assert code == 0 and "Traceback" not in err, err
    assert "accept: Too many open files; backing off" in err


def _answers(echo: Callable[[bytes], bytes]) -> bool:
    try:
        return echo(b"ping") == b"ping"
    except OSError:
        return False


# -- hostile input on every endpoint ------------------------------------------------------------


def test_every_endpoint_survives_hostile_input(daemons: Daemons) -> None:
    """Garbage, absurd frame lengths, half frames, vanishing clients, stray signals, a shared
    length word that lies: each session may end, the endpoint and the daemon go on."""
    import signal

    import zmq

    from daemonkit.service.client import ControlClient

    daemons.start()
    pid = daemons.pid()
    stream = str(next(daemons.rdir.glob(f"dk.{pid}.unix-stream.*")))
    zmq_path = str(next(daemons.rdir.glob(f"dk.{pid}.zmq-ipc.*")))
    inputs = [
        os.urandom(4096),  # noise
        (2**32 - 1).to_bytes(4, "little"),  # a 4 GiB frame: over MAX_MESSAGE, session ends
        (100 << 20).to_bytes(4, "little"),  # 100 MiB: within MAX_MESSAGE, over bytes in flight
        (1000).to_bytes(4, "little") + b"x" * 10,  # half a frame, then the client vanishes
        b"\0",  # not even a whole header
    ]
    for data in inputs:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(stream)
            s.sendall(data)
    for _ in range(200):  # connect and vanish
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(stream)
    with ControlClient(daemons.rdir) as control:  # a FIFO session fed garbage, then abandoned
        reply = control.request({"cmd": "open", "endpoint": "fifo", "max_size": 64})
        rfd = os.open(reply["to_client"], os.O_RDONLY | os.O_NONBLOCK)
        wfd = os.open(reply["to_daemon"], os.O_WRONLY)
        os.write(wfd, (2**32 - 1).to_bytes(4, "little") + os.urandom(100))
        os.close(wfd)
        os.close(rfd)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # not ZMTP at all
        s.connect(zmq_path)
        s.sendall(os.urandom(1024))
    ctx = zmq.Context()
    try:  # the wrong socket type: a DEALER without the REQ envelope
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(f"ipc://{zmq_path}")
        dealer.send_multipart([b"no", b"envelope"])
        dealer.close()
    finally:
        ctx.term()
    for _ in range(20):  # SIGUSR1 from a process no session is attached for
        os.kill(pid, signal.SIGUSR1)
    healthy(daemons, pid)


def test_bytes_in_flight_per_user(daemons: Daemons) -> None:
    """Headers of 60 MiB frames on 3 connections of one user: 2 fit the 160 MiB one user may
    hold in echo buffers, the 3rd session is ended at once though the daemon-wide 256 MiB is
    not reached; the 2 end when their clients leave; then the budget is back to 0."""
    daemons.start()
    pid = daemons.pid()
    stream = str(next(daemons.rdir.glob(f"dk.{pid}.unix-stream.*")))
    conns = []
    try:
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(stream)
            s.sendall((60 << 20).to_bytes(4, "little"))  # the body never comes
            conns.append(s)
        wait_until(lambda: _limits(daemons)["bytes_in_flight"]["refused"] >= 1, timeout=5,
                   what="the third buffer to be refused")  # fmt: skip
        budget = _limits(daemons)["bytes_in_flight"]
        assert budget["used"] == 2 * (60 << 20) and budget["users"] == 1, budget
        assert budget["used"] < budget["total"]  # the per-user limit bit, not the global one
    finally:
        for s in conns:
            s.close()
    wait_until(lambda: _limits(daemons)["bytes_in_flight"]["used"] == 0, what="the budget back")
    healthy(daemons, pid)


@pytest.mark.stress
def test_a_message_begun_and_never_finished_ends_its_session(daemons: Daemons) -> None:
    """Half a frame, then silence: the session ends at the message deadline (10 s), not never."""
    daemons.start()
    pid = daemons.pid()
    stream = str(next(daemons.rdir.glob(f"dk.{pid}.unix-stream.*")))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(stream)
        s.sendall((1000).to_bytes(4, "little") + b"x" * 10)
        s.settimeout(15)
        start = time.monotonic()
        assert s.recv(1) == b""  # the daemon closed it
        assert 9 <= time.monotonic() - start <= 12
    healthy(daemons, pid)


def _limits(d: Daemons) -> dict[str, Any]:
    res = dk("status", "--json", *d.loc())
    limits: dict[str, Any] = json.loads(res.stdout)["status"]["limits"]
    return limits


def test_serve_survives_hostile_input() -> None:
    """Noise, absurd and half frames on serve's TCP port; frame counts and operations its
    ROUTER does not know: it answers afterwards, and exits 0 at SIGTERM."""
    import zmq
    from test_remote import start_serve, stop_serve, tcp_counters

    s = start_serve("--tcp-port", "0", "--max-connections", "8", "--idle-timeout", "1")
    try:
        assert s.tcp_port is not None
        for data in (os.urandom(4096), b"\xff\xff\xff\xff", (1000).to_bytes(4, "big") + b"x",
                     b"\0"):  # fmt: skip
            with socket.create_connection(("127.0.0.1", s.tcp_port), timeout=3) as c:
                c.sendall(data)
        ctx = zmq.Context()
        try:
            dealer = ctx.socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(s.zmq_url)
            for frames in ([b"x"] * 5, [b"no-such-op", b"body"], [b""] * 2, [os.urandom(64)]):
                dealer.send_multipart(frames)
            dealer.close()
        finally:
            ctx.term()
        wait_until(lambda: _answers(s.tcp_echo), timeout=5, what="serve to answer")
        assert tcp_counters(s)["refused"] >= 1  # the 4 GiB length
    finally:
        code, err = stop_serve(s)
    assert code == 0 and "Traceback" not in err, err


def test_a_client_of_a_daemon_that_cannot_accept_gives_up(daemons: Daemons) -> None:
    """The daemon at its descriptor limit, its unix-stream backlog full: a new client's
    connect(2) gives up after CONNECT_TIMEOUT_S instead of sleeping for good (with Ctrl-C held
    off by the runner, nothing else would end it)."""
    from daemonkit.service.client import ControlClient
    from daemonkit.service.endpoints.stream import CONNECT_TIMEOUT_S, UnixStreamEndpoint

    daemons.start()
    pid = daemons.pid()
    stream = next(daemons.rdir.glob(f"dk.{pid}.unix-stream.*"))
    with ControlClient(daemons.rdir, timeout=10) as control:
        # connect(2) returns once the connection is queued, before the daemon accept(2)s it:
        # a reply is what shows the daemon holds this connection. Lowered before that, the
        # limit would leave it in the control socket's queue, the request unread.
        assert control.request({"cmd": "ping"}) == {"pong": True, "pid": pid}
        used = len(os.listdir(f"/proc/{pid}/fd"))
        # Below what it holds (allowed: open descriptors stay), so that no descriptor it
        # closes meanwhile makes room for an accept.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (used - 4, 1024))
        backlog = _fill_backlog(stream)  # the accept thread backs off; the queue stays full
        try:
            # Answering an accepted client's open needs no new descriptor, even at the limit.
            reply = control.request({"cmd": "open", "endpoint": "unix-stream", "max_size": 64})
            assert "error" not in reply and reply["path"].endswith(stream.name), reply
            assert control.dir is not None
            start = time.monotonic()
            with pytest.raises(ChannelError, match="does not accept"):
                UnixStreamEndpoint.client_end(reply, control.dir, control.daemon_pid)
            assert CONNECT_TIMEOUT_S - 0.5 <= time.monotonic() - start <= CONNECT_TIMEOUT_S + 3
        finally:
            for s in backlog:
                s.close()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 1024))
    healthy(daemons, pid)


def test_a_control_client_at_the_descriptor_limit_hears_why(daemons: Daemons) -> None:
    """The daemon exactly at RLIMIT_NOFILE: accept(2) fails with EMFILE, and a new control
    client is answered "out of descriptors" (through the spare descriptor) instead of waiting
    unread in the queue until its timeout; once the limit is back, it is served again."""
    from daemonkit.service.client import ControlClient

    daemons.start()
    pid = daemons.pid()
    with ControlClient(daemons.rdir, timeout=10) as control:
        assert control.request({"cmd": "ping"}) == {"pong": True, "pid": pid}  # accepted
        used = len(os.listdir(f"/proc/{pid}/fd"))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (used, 1024))
        try:
            start = time.monotonic()
            with ControlClient(daemons.rdir, timeout=10) as late:
                assert late.request({"cmd": "ping"}) == {
                    "error": "daemon: out of descriptors (EMFILE)"
                }
            assert time.monotonic() - start < 5  # an answer, not the 10 s timeout
            res = dk("status", *daemons.loc())
            assert res.returncode != 0
            assert res.stderr == "daemonkit: status refused: daemon: out of descriptors (EMFILE)\n"
            # the client it already held is served as before
            assert control.request({"cmd": "ping"}) == {"pong": True, "pid": pid}
            assert len(os.listdir(f"/proc/{pid}/fd")) == used  # the spare is back
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 1024))
        assert control.request({"cmd": "status"})["limits"]["control_clients_out_of_fds"] == 2
    healthy(daemons, pid)


# -- a cgroup's pids.max ------------------------------------------------------------------------


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    """A fresh pids cgroup (v1 ``/sys/fs/cgroup/pids``, or v2 with the pids controller)."""
    _needs_root("make a cgroup")
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if (base / "cgroup.procs").exists() and (
            base.name == "pids" or "pids" in _read(base / "cgroup.subtree_control")
        ):
            break
    else:
        require("pids-cgroup", "no pids cgroup controller to use here")
    group = base / f"dk.{os.getpid()}.hostile"
    try:
        group.mkdir()
    except OSError as exc:
        require("pids-cgroup", f"cannot make a cgroup under {base}: {exc.strerror}")
    try:
        yield group
    finally:
        for pid in _read(group / "cgroup.procs").split():
            with contextlib.suppress(OSError):
                (base / "cgroup.procs").write_text(pid)  # back to the root, so rmdir works
        group.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_pids_max_refuses_threads_not_the_daemon(daemons: Daemons, pids_cgroup: Path) -> None:
    """The daemon moved into a cgroup whose pids.max is what it has: pthread_create fails
    with EAGAIN; each client that needed a thread is refused and nothing of it is left."""
    daemons.start()
    pid = daemons.pid()
    (pids_cgroup / "cgroup.procs").write_text(str(pid))  # the whole thread group moves
    (pids_cgroup / "pids.max").write_text(_read(pids_cgroup / "pids.current").strip())
    before = set(os.listdir(daemons.rdir))
    try:
        for name in ("fifo", "posix-shm", "signal"):
            with pytest.raises(ChannelError, match="cannot start a thread"):
                round_trip(daemons.rdir, name)
        assert set(os.listdir(daemons.rdir)) == before
        assert [o for o in list_objects() if o.owner == pid] == []
        assert int(_read(pids_cgroup / "pids.events").split()[1]) > 0  # the kernel said no
    finally:
        (pids_cgroup / "pids.max").write_text("max")
    healthy(daemons, pid)
