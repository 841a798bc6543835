"""The units in services/ under a real systemd: PID 1 of a throw-away systemd-nspawn container.

One container is booted per module (about a second once the root filesystem is cached, see
tests/systemd_container.py); the project, its virtualenv and the Python behind it are bound in
read-only at their host paths, and the units are copied to /etc/systemd/system as a user would.
Every check reads what systemd itself reports (``systemctl show``, ``status``, the journal) or
what the kernel shows inside the container (``/proc``, the runtime directory).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from facilities import require
from systemd_container import (
    Container,
    Unavailable,
    ensure_rootfs,
    install_daemonkit,
    python_binds,
    unavailable_reason,
)

from daemonkit.errors import ConfigError

pytestmark = pytest.mark.systemd
T = TypeVar("T")

PROJECT = Path(__file__).resolve().parent.parent
SERVICES = PROJECT / "services"
# Where the units expect the command (README: link the venv's script there).
INSTALLED = "/usr/local/bin/daemonkit"


def _cannot_run(reason: str) -> None:
    """Skip with the reason; where CI promises the container works, fail instead."""
    require("systemd", f"cannot boot systemd in a container: {reason}")


@pytest.fixture(scope="module")
def rootfs() -> Path:
    reason = unavailable_reason()
    if reason:
        _cannot_run(reason)
    try:
        return ensure_rootfs()
    except Unavailable as err:
        _cannot_run(str(err))
        raise  # not reached: _cannot_run raises


# --- reading what systemd saw ---------------------------------------------------------------------

# systemd at debug level logs every sd_notify datagram it accepts for a unit, as
# "UNIT: Got notification message from PID N (READY=1, STATUS=...)": the journal then shows what
# the daemon told systemd and in which order relative to the unit's state changes.
DAEMON_IDENT = "SYSLOG_IDENTIFIER=daemonkit"  # journald names stdout lines after argv[0]
NOTIFIED = re.compile(r"Got notification message from PID (\d+) \((.*)\)$")


def journal_cursor(ct: Container) -> str:
    """Where the journal ends now: later reads see only what happens after this."""
    out = ct.run("journalctl", "--lines=1", "--show-cursor", "--output=cat").stdout
    return out.rsplit("-- cursor: ", 1)[1].strip()


def journal(ct: Container, unit: str, after: str) -> list[str]:
    """The unit's journal lines (systemd's about it and the daemon's own) since the cursor."""
    # Not `--unit`: at debug level the forked child logs before exec(2), journald caches that
    # pid's metadata (cgroup init.scope) and files the daemon's own lines under it for a
    # while. So: systemd's lines about the unit, or anything the daemon wrote.
    matches = (f"_SYSTEMD_UNIT={unit}", "+", f"UNIT={unit}", "_PID=1", "+", DAEMON_IDENT)
    out = ct.run("journalctl", "--no-pager", "--output=cat", f"--after-cursor={after}", *matches)
    return out.stdout.splitlines()


def journal_with(ct: Container, unit: str, after: str, *needles: str) -> list[str]:
    """The unit's journal since the cursor, once every needle is in it (journald writes
    asynchronously: a line may land a moment after the event)."""

    def complete() -> list[str] | None:
        lines = journal(ct, unit, after)
        text = "\n".join(lines)
        return lines if all(n in text for n in needles) else None

    return wait_until(complete, 10, f"{needles} in the journal of {unit}")


def notifications(lines: list[str]) -> list[str]:
    """The sd_notify messages in journal lines, each as its comma-joined assignments."""
    return [m[2] for line in lines if (m := NOTIFIED.search(line))]


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout} s still no {what}", pytrace=False)
        time.sleep(0.05)


# --- the harness itself --------------------------------------------------------------------------

NOTIFY_AFTER_1S = """\
import os, socket, time
time.sleep(1.0)  # systemctl start must still be waiting here
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.sendto(b"READY=1\\nSTATUS=throwaway ready", os.environ["NOTIFY_SOCKET"])
time.sleep(3600)
"""

THROWAWAY_UNIT = """\
[Unit]
Description=throw-away Type=notify unit (harness self-test)

[Service]
Type=notify
ExecStart=/usr/bin/python3 /usr/local/bin/throwaway-notify
"""


def _host_state(rootfs: Path) -> dict[str, list[str]]:
    """What a container could leave behind on the host (other users' mounts and cgroups
    come and go on a shared machine: only what names our root fs or nspawn counts)."""
    run_systemd = Path("/run/systemd")
    return {
        "mounts": [
            line
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(rootfs) in line or "nspawn" in line
        ],
        "run_systemd": sorted(map(str, run_systemd.rglob("*"))) if run_systemd.exists() else [],
        "tmp_nspawn": sorted(map(str, Path("/tmp").glob("nspawn*"))),
    }


def test_harness_boots_systemd_and_leaves_nothing_on_host(rootfs: Path) -> None:
    """systemd is PID 1 of its own pid namespace, a notify unit's start waits for READY=1, and
    after poweroff no process, cgroup, mount or /run entry of the container remains."""
    before = _host_state(rootfs)
    with Container(rootfs) as ct:
        leader, nspawn_pid, cgroups = ct.leader, ct.nspawn_pid, ct.cgroups
        # NSpid lists the pid in each nested pid namespace: host pid, then 1 inside.
        nspid = next(
            line.split()[1:]
            for line in Path(f"/proc/{leader}/status").read_text().splitlines()
            if line.startswith("NSpid:")
        )
        assert nspid == [str(leader), "1"]
        assert ct.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
        # nspawn put the container's processes below our cgroup (payload/, in every hierarchy
        # systemd uses) and itself in supervisor/: removing our cgroup tree removes them all.
        in_cgroups = Path(f"/proc/{leader}/cgroup").read_text()
        for cg in ct.cgroups:
            assert f":/{cg.name}/payload/init.scope" in in_cgroups

        ct.write_file("/usr/local/bin/throwaway-notify", NOTIFY_AFTER_1S)
        ct.write_file("/etc/systemd/system/throwaway.service", THROWAWAY_UNIT)
        ct.systemctl("daemon-reload")
        ct.run("systemd-analyze", "log-level", "debug")
        cursor = journal_cursor(ct)
        t0 = time.monotonic()
        ct.systemctl("start", "throwaway.service")
        took = time.monotonic() - t0
        lines = journal_with(ct, "throwaway.service", cursor, "READY=1", "start -> running")
        shown = ct.show("throwaway.service", "ActiveState", "MainPID", "StatusText")
        assert took >= 1.0, f"start returned after {took:.2f} s, before READY=1 was sent"
        assert shown["ActiveState"] == "active"
        assert shown["StatusText"] == "throwaway ready"
        cmdline = ct.run("cat", f"/proc/{shown['MainPID']}/cmdline").stdout
        assert "throwaway-notify" in cmdline
        # READY=1 arrived while the unit was starting, and only then did the start job end.
        ready = next(i for i, line in enumerate(lines) if "READY=1" in line)
        assert notifications(lines) == ["READY=1, STATUS=throwaway ready"]
        assert any("start -> running" in line for line in lines[ready:])
        assert not any("start -> running" in line for line in lines[:ready])
    assert not Path(f"/proc/{nspawn_pid}").exists()
    assert not Path(f"/proc/{leader}").exists()
    assert not [cg for cg in cgroups if cg.exists()]
    assert _host_state(rootfs) == before


# --- the project's units -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct(rootfs: Path) -> Iterator[Container]:
    """One container for the module, with daemonkit and its units installed as a user would."""
    with Container(rootfs, python_binds(PROJECT)) as container:
        install_daemonkit(container, PROJECT)
        yield container


DEMO = "daemonkit-demo.service"  # Type=notify: `daemonkit run` in the foreground
FORKING = "daemonkit-demo-forking.service"  # Type=forking: `daemonkit start`, PIDFile=

# A client of the daemon's control socket, run by the container's own python3, so it does not
# depend on the code under test: one newline-terminated JSON request, one reply line.
CONTROL_CLIENT = """\
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])  # ENOENT or ECONNREFUSED if the daemon is not listening (yet)
sock.sendall(sys.argv[2].encode() + b"\\n")
print(sock.makefile().readline(), end="")
"""


def runtime_dir(ct: Container, unit: str) -> str:
    """The unit's RuntimeDirectory=, which systemd creates under /run for a system unit."""
    names = ct.show(unit, "RuntimeDirectory")["RuntimeDirectory"].split()
    assert names, f"{unit} has no RuntimeDirectory="
    return f"/run/{names[0]}"


def control(ct: Container, unit: str, request: dict[str, object]) -> dict[str, Any]:
    sock = f"{runtime_dir(ct, unit)}/control.sock"
    out = ct.run("/usr/bin/python3", "-c", CONTROL_CLIENT, sock, json.dumps(request)).stdout
    reply: dict[str, Any] = json.loads(out)
    return reply


def main_pid(ct: Container, unit: str) -> int:
    return int(ct.show(unit, "MainPID")["MainPID"])


def cmdline(ct: Container, pid: int) -> list[str]:
    """argv of a process in the container, from its /proc (empty if it is gone)."""
    done = ct.run("cat", f"/proc/{pid}/cmdline", check=False)
    return done.stdout.split("\0")[:-1] if done.returncode == 0 else []


@contextmanager
def systemd_debug(ct: Container) -> Iterator[None]:
    """PID 1 at debug level: it logs each sd_notify message it accepts (see NOTIFIED)."""
    ct.run("systemd-analyze", "log-level", "debug")
    try:
        yield
    finally:
        ct.run("systemd-analyze", "log-level", "info")


@contextmanager
def unit_copy(ct: Container, unit: str, copy: str, dropin: str) -> Iterator[str]:
    """Install ``copy`` as the unit file of ``unit`` plus a drop-in; remove both afterwards."""
    ct.run("cp", f"/etc/systemd/system/{unit}", f"/etc/systemd/system/{copy}")
    ct.write_file(f"/etc/systemd/system/{copy}.d/test.conf", dropin)
    ct.systemctl("daemon-reload")
    try:
        yield copy
    finally:
        ct.systemctl("stop", copy, check=False)
        ct.systemctl("reset-failed", copy, check=False)
        ct.run("rm", "-rf", f"/etc/systemd/system/{copy}", f"/etc/systemd/system/{copy}.d")
        ct.systemctl("daemon-reload")


@contextmanager
def running(ct: Container, unit: str) -> Iterator[None]:
    """Start ``unit``; whatever the test does, stop it and forget a failure afterwards."""
    try:
        ct.systemctl("start", unit)
        yield
    finally:
        ct.systemctl("stop", unit, check=False)
        ct.systemctl("reset-failed", unit, check=False)


def test_every_unit_passes_systemd_analyze_verify(ct: Container) -> None:
    """systemd-analyze exits 0 on unknown keys and bad values: empty stderr is the real check."""
    units = sorted(p.name for p in SERVICES.glob("*.service"))
    assert {DEMO, FORKING} <= set(units)
    for unit in units:
        done = ct.run(
            "systemd-analyze", "verify", "--man=no", f"/etc/systemd/system/{unit}", check=False
        )
        assert (done.returncode, done.stderr) == (0, ""), f"{unit}: {done.stderr}"


def test_notify_unit_start_returns_after_ready(ct: Container) -> None:
    """`systemctl start` returns once the daemon sent READY=1: at that moment the unit is
    active, its control socket answers at the first attempt, and MainPID and StatusText are
    the ones the daemon itself reported."""
    cursor = journal_cursor(ct)
    with systemd_debug(ct), running(ct, DEMO):
        # No polling from here on: all of this must already hold when start returns.
        status = control(ct, DEMO, {"cmd": "status"})
        shown = ct.show(DEMO, "Type", "ActiveState", "SubState", "MainPID", "StatusText")
        assert ct.systemctl("is-active", DEMO).stdout.strip() == "active"
        assert (shown["Type"], shown["ActiveState"], shown["SubState"]) == (
            "notify",
            "active",
            "running",
        )
        pid = int(shown["MainPID"])
        assert status["pid"] == pid
        argv = cmdline(ct, pid)
        assert argv[1].endswith("/daemonkit") and "run" in argv, argv
        lines = journal_with(ct, DEMO, cursor, "READY=1")
        first = notifications(lines)[0]
        assert "READY=1" in first.split(", ")
        assert f"STATUS={shown['StatusText']}" in first.split(", ")
        assert shown["StatusText"].startswith(f"{status['name']}: serving")
        assert f"Got notification message from PID {pid} " in "\n".join(lines)


def test_notify_unit_reload_goes_through_reloading_and_ready(ct: Container) -> None:
    """`systemctl reload` (ExecReload= sends SIGHUP): the daemon announces RELOADING=1 with its
    CLOCK_MONOTONIC time, re-reads its configuration in place and says READY=1 again."""
    with systemd_debug(ct), running(ct, DEMO):
        pid = main_pid(ct, DEMO)
        cursor = journal_cursor(ct)
        ct.systemctl("reload", DEMO)
        # systemd 252 ends the reload job when ExecReload's kill exits; the daemon reloads
        # asynchronously, and the journal shows RELOADING=1 then READY=1 as it did.
        wait_until(lambda: control(ct, DEMO, {"cmd": "status"})["reloads"] == 1, 10, "reload")
        lines = journal_with(ct, DEMO, cursor, "RELOADING=1", "reloaded configuration")

        def reload_notifications() -> list[list[str]] | None:
            sent = [n.split(", ") for n in notifications(journal(ct, DEMO, cursor))]
            starts = [i for i, tags in enumerate(sent) if "RELOADING=1" in tags]
            since = sent[starts[0] :] if starts else []
            return since if any("READY=1" in tags for tags in since[1:]) else None

        # The daemon logs the reload before it sends READY=1: wait for that message too.
        sent = wait_until(reload_notifications, 10, "READY=1 after RELOADING=1")
        assert any(tag.startswith("MONOTONIC_USEC=") for tag in sent[0])
        assert any("READY=1" in tags for tags in sent[1:])
        assert any("reloaded configuration" in line for line in lines)
        assert main_pid(ct, DEMO) == pid  # reloaded in place, not restarted
        assert ct.show(DEMO, "ActiveState", "ReloadResult") == {
            "ActiveState": "active",
            "ReloadResult": "success",
        }


PRESERVE_DROPIN = """\
[Service]
# Keep the runtime dir after stop, so what is left in it is what the daemon left.
RuntimeDirectoryPreserve=yes
"""

# A client that opens per-client endpoint objects and keeps its control connection (so the
# objects) until the daemon closes it: one reply line per request, then "eof" at the stop.
HOLDING_CLIENT = """\
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
conn = sock.makefile("rwb")
for request in sys.argv[2:]:
    conn.write(request.encode() + b"\\n")
    conn.flush()
    print(conn.readline().decode().strip(), flush=True)
print("eof" if conn.readline() == b"" else "more", flush=True)
"""


def test_notify_unit_stop_is_clean(ct: Container) -> None:
    """SIGTERM: the daemon sends STOPPING=1, removes what it made, the objects of a client
    still connected included, and exits 0 by itself.

    systemd removes RuntimeDirectory= after stop, which would hide a daemon that cleans up
    nothing: this runs a copy of the unit whose only change is RuntimeDirectoryPreserve=yes.
    """
    copy = "daemonkit-demo-preserve.service"
    with systemd_debug(ct), unit_copy(ct, DEMO, copy, PRESERVE_DROPIN) as unit:
        ct.systemctl("start", unit)
        pid = main_pid(ct, unit)
        rundir = runtime_dir(ct, unit)
        opens = [
            {"cmd": "open", "endpoint": "fifo"},
            {"cmd": "open", "endpoint": "posix-shm", "max_size": 4096},
        ]
        sock = f"{rundir}/control.sock"
        client = ct.spawn("/usr/bin/python3", "-c", HOLDING_CLIENT, sock, *map(json.dumps, opens))
        try:
            assert client.stdout is not None
            replies = [json.loads(client.stdout.readline()) for _ in opens]
            assert not [r for r in replies if "error" in r], replies
            made = daemon_objects(ct, pid, rundir)
            assert {f"{rundir}/control.sock", f"{rundir}/daemonkit.pid"} <= set(made)
            assert {replies[0]["to_daemon"], replies[0]["to_client"]} <= set(made)  # FIFOs
            assert [m for m in made if m.startswith("/dev/shm/")]  # segment and semaphores
            cursor = journal_cursor(ct)
            ct.systemctl("stop", unit)
            assert client.stdout.readline().strip() == "eof"  # the daemon closed on us
        finally:
            client.kill()
            client.wait()
        assert ct.systemctl("is-active", unit, check=False).stdout.strip() == "inactive"
        assert not cmdline(ct, pid)
        assert ct.run("test", "-d", rundir, check=False).returncode == 0  # systemd kept it
        assert daemon_objects(ct, pid, rundir) == []  # and the daemon emptied it
        # A stopped unit is garbage-collected at once, and `show` then gives defaults
        # (Result=success whatever happened): the journal keeps what systemd saw.
        lines = journal_with(ct, unit, cursor, "Deactivated successfully", "stopped")
        assert "Main process exited, code=exited, status=0/SUCCESS" in "\n".join(lines)
        assert not [line for line in lines if "Failed with result" in line]
        assert any("STOPPING=1" in n.split(", ") for n in notifications(lines))
        ct.run("rm", "-rf", rundir)


def daemon_objects(ct: Container, pid: int, rundir: str) -> list[str]:
    """Files in the runtime dir plus POSIX IPC objects named for ``pid``, as the container's
    kernel shows them."""
    script = f"ls -d {rundir}/* /dev/shm/*dk.{pid}.* /dev/mqueue/dk.{pid}.* 2>/dev/null; true"
    return ct.run("sh", "-c", script).stdout.split()


def exec_argv(ct: Container, unit: str) -> list[str]:
    """ExecStart= of a unit, as systemd parsed it ("{ path=... ; argv[]=A B C ; ... }")."""
    shown = ct.show(unit, "ExecStart")["ExecStart"]
    return shown.split("argv[]=", 1)[1].split(" ;", 1)[0].split()


BROKEN_CONFIG = 'idle_timeout = "soon"  # a string where seconds are expected\n'


def test_broken_config_fails_start_with_the_daemons_error(ct: Container) -> None:
    """Initialization fails before READY=1: the start job fails, systemd records the daemon's
    exit code, and its one-line error is in `systemctl status` and the journal."""
    argv = exec_argv(ct, DEMO)
    if "--config" in argv:  # our --config comes last and wins; drop theirs to be plain
        i = argv.index("--config")
        del argv[i : i + 2]
    config = "/etc/daemonkit-test/broken.toml"
    ct.write_file(config, BROKEN_CONFIG)
    dropin = f"[Service]\nExecStart=\nExecStart={' '.join(argv)} --config {config}\n"
    with unit_copy(ct, DEMO, "daemonkit-demo-broken.service", dropin) as unit:
        cursor = journal_cursor(ct)
        started = ct.systemctl("start", unit, check=False)
        assert started.returncode != 0
        assert "failed" in started.stderr
        # Restart=on-failure starts it again 100 ms later unless 6 is in
        # RestartPreventExitStatus=, so `show` would race the next attempt: the journal keeps
        # each attempt's end. "code=exited" is CLD_EXITED: it exited, it was not killed.
        code = ConfigError.exit_code  # LSB 6: program is not configured
        lines = journal_with(
            ct, unit, cursor, f"code=exited, status={code}/", "Failed with result 'exit-code'"
        )
        assert not any("code=killed" in line for line in lines)
        error = f"daemonkit: config {config}: idle_timeout"

        def status_shows_error() -> str | None:
            # 50 lines, not the default 10: each restart attempt adds about six lines of
            # systemd's, which push the daemon's own line out of the last ten.
            out = ct.systemctl("status", "--lines=50", unit, check=False).stdout
            return out if error in out else None

        status = wait_until(status_shows_error, 10, f"{error!r} in systemctl status")
        assert "Traceback" not in status
        assert error in "\n".join(journal(ct, unit, cursor))


# 3 s rather than the unit's 10 s to keep the test short, but not less: on this shared 2-core
# machine a loaded scheduler can delay a ping by a second, and a spurious restart would be a
# failure of the machine, not of the daemon.
WATCHDOG_S = 3
WATCHDOG_DROPIN = f"""\
[Service]
WatchdogSec={WATCHDOG_S}s
Environment=DAEMONKIT_TEST_HOOKS=1
"""


def test_watchdog_pings_keep_it_alive_and_silence_gets_it_restarted(ct: Container) -> None:
    """With WatchdogSec= the daemon pings every half period and systemd leaves it alone; once
    the test-only switch stops the pings, systemd kills it and Restart=on-failure restarts it."""
    copy = "daemonkit-demo-wd.service"
    with systemd_debug(ct), unit_copy(ct, DEMO, copy, WATCHDOG_DROPIN) as wd:
        cursor = journal_cursor(ct)
        ct.systemctl("start", wd)
        first = main_pid(ct, wd)
        assert ct.show(wd, "WatchdogUSec")["WatchdogUSec"] == f"{WATCHDOG_S}s"
        watched = 2.5 * WATCHDOG_S  # without pings systemd would have acted twice over
        time.sleep(watched)
        assert ct.show(wd, "ActiveState", "NRestarts", "MainPID") == {
            "ActiveState": "active",
            "NRestarts": "0",
            "MainPID": str(first),
        }
        pings = [n for n in notifications(journal(ct, wd, cursor)) if n == "WATCHDOG=1"]
        # One ping per WatchdogSec/2: 5 expected in 2.5 periods; at least 3 leaves room for
        # a loaded machine and still needs periodic pings.
        assert len(pings) >= 3, f"{len(pings)} WATCHDOG=1 in {watched} s"

        assert control(ct, wd, {"cmd": "test-stop-watchdog"}) == {"ok": True}
        silenced = time.monotonic()

        def restarted() -> bool:
            shown = ct.show(wd, "ActiveState", "NRestarts", "MainPID")
            return (
                shown["NRestarts"] == "1"
                and shown["ActiveState"] == "active"
                and int(shown["MainPID"]) not in (0, first)
            )

        wait_until(restarted, 4 * WATCHDOG_S + 10, "restart after the pings stopped")
        # The last ping came at most half a period before the switch: systemd cannot have
        # fired sooner than the other half.
        assert time.monotonic() - silenced >= WATCHDOG_S / 2
        lines = journal_with(ct, wd, cursor, f"Watchdog timeout (limit {WATCHDOG_S}s)!")
        assert "Failed with result 'watchdog'" in "\n".join(lines)
        assert control(ct, wd, {"cmd": "status"})["pid"] == main_pid(ct, wd)


def test_forking_unit_pidfile_reload_stop(ct: Container) -> None:
    """`daemonkit start` forks, the daemon writes its pidfile and reports ready through the
    readiness pipe before the starter exits: systemd then reads the pidfile for MainPID."""
    with running(ct, FORKING):
        # As for the notify unit: no polling, this must hold when start returns.
        status = control(ct, FORKING, {"cmd": "status"})
        shown = ct.show(FORKING, "Type", "ActiveState", "SubState", "MainPID", "PIDFile")
        assert (shown["Type"], shown["ActiveState"], shown["SubState"]) == (
            "forking",
            "active",
            "running",
        )
        pid = int(shown["MainPID"])
        assert int(ct.run("cat", shown["PIDFile"]).stdout) == pid == status["pid"]
        stat = ct.run("cat", f"/proc/{pid}/stat").stdout
        assert stat.rsplit(")", 1)[1].split()[1] == "1"  # ppid 1: the starter is gone
        assert "start" in cmdline(ct, pid)

        ct.systemctl("reload", FORKING)
        wait_until(lambda: control(ct, FORKING, {"cmd": "status"})["reloads"] == 1, 10, "reload")
        assert main_pid(ct, FORKING) == pid

        cursor = journal_cursor(ct)
        ct.systemctl("stop", FORKING)
        assert ct.systemctl("is-active", FORKING, check=False).stdout.strip() == "inactive"
        assert not cmdline(ct, pid)
        assert ct.run("test", "-e", shown["PIDFile"], check=False).returncode == 1
        lines = journal_with(ct, FORKING, cursor, "Deactivated successfully")
        assert not [line for line in lines if "Failed with result" in line]


def proc_status(ct: Container, pid: int) -> dict[str, str]:
    text = ct.run("cat", f"/proc/{pid}/status").stdout
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}


def test_hardening_options_are_in_effect(ct: Container) -> None:
    """What the unit's sandboxing options did to the running daemon, read from the kernel."""
    with running(ct, DEMO):
        pid = main_pid(ct, DEMO)
        status = proc_status(ct, pid)
        assert status["NoNewPrivs"] == "1"  # NoNewPrivileges=yes
        # CapabilityBoundingSet= (empty): root, but with no capability at all
        assert {status[k] for k in ("CapBnd", "CapEff", "CapPrm")} == {"0000000000000000"}
        assert status["Seccomp"] == "2"  # SECCOMP_MODE_FILTER: SystemCallFilter= and friends

        def ns(p: int, kind: str) -> str:
            return ct.run("readlink", f"/proc/{p}/ns/{kind}").stdout.strip()

        # PrivateNetwork=yes: a network namespace of its own, holding only loopback
        assert ns(pid, "net") != ns(1, "net")
        links = ct.run("cat", f"/proc/{pid}/net/dev").stdout.splitlines()[2:]
        assert [line.split(":")[0].strip() for line in links] == ["lo"]
        # ProtectHostname=yes: its own UTS namespace
        assert ns(pid, "uts") != ns(1, "uts")

        def in_daemon_view(script: str) -> bool:
            # nsenter --mount only: the daemon's view of the file system, with our
            # capabilities, so a failure is a read-only mount (EROFS), not permissions.
            cmd = ("nsenter", "--target", str(pid), "--mount", "sh", "-c", script)
            return ct.run(*cmd, check=False).returncode == 0

        def writable(path: str) -> bool:
            return in_daemon_view(f'touch "{path}/.dk-probe" && rm "{path}/.dk-probe"')

        assert not writable("/usr")  # ProtectSystem=strict
        assert not writable("/etc")
        assert not writable("/root")  # ProtectHome=read-only
        assert writable(runtime_dir(ct, DEMO))  # RuntimeDirectory= is the exception
        # PrivateTmp=yes: a writable /tmp of its own, which the rest of the system does not see
        assert in_daemon_view("touch /tmp/.dk-probe")
        assert ct.run("test", "-e", "/tmp/.dk-probe", check=False).returncode == 1
        assert in_daemon_view("rm /tmp/.dk-probe")


def test_bench_against_the_daemon_systemd_started(ct: Container) -> None:
    """`daemonkit bench --target daemon` measures the endpoints of the daemon systemd runs, in
    its sandbox: every timed round trip shows up in that daemon's own counters."""
    iterations, warmup = 300, 30
    with running(ct, DEMO):
        pid = main_pid(ct, DEMO)
        rundir = runtime_dir(ct, DEMO)
        before = control(ct, DEMO, {"cmd": "status"})["endpoints"]
        objects = daemon_objects(ct, pid, rundir)
        done = ct.run(
            *(INSTALLED, "bench", "--target", "daemon", "--runtime-dir", rundir),
            *("--iterations", str(iterations), "--warmup", str(warmup)),
            *("--json", "/tmp/dk-bench.json"),
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        doc = json.loads(ct.run("cat", "/tmp/dk-bench.json").stdout)
        after = control(ct, DEMO, {"cmd": "status"})["endpoints"]
        assert doc["machine"]["daemon"]["pid"] == pid == main_pid(ct, DEMO)
        served = {name for name in before if name != "control"}
        assert {r["channel"] for r in doc["results"]} == served
        for r in doc["results"]:
            assert (r["peer"], r["error"], r["skipped"]) == ("daemon", None, None), r
            assert r["iterations"] == iterations
            lat = r["latency_ns"]
            assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
            # The daemon counted at least the warm-up and timed round trips of this run.
            handled = after[r["channel"]]["echoes"] - before[r["channel"]]["echoes"]
            assert handled >= iterations + warmup, (r["channel"], handled)
        # Per-client objects (FIFO pairs, shared memory) went with the bench's connections.
        assert daemon_objects(ct, pid, rundir) == objects
        assert ct.systemctl("is-active", DEMO).stdout.strip() == "active"


@pytest.mark.parametrize("unit", [DEMO, FORKING])
def test_inspect_passes_the_daemon_systemd_runs(ct: Container, unit: str) -> None:
    """`daemonkit inspect --unit` on the daemon under the real systemd: every daemon(7) step
    holds, whether systemd did steps 5-8 (Type=notify) or `daemonkit start` did (forking)."""
    with running(ct, unit):
        pid = main_pid(ct, unit)
        done = ct.run(INSTALLED, "inspect", "--unit", unit, "--json", check=False)
        doc = json.loads(done.stdout)
        failed = [f for f in doc["findings"] if f["status"] != "holds"]
        assert (done.returncode, failed) == (0, []), done.stderr
        assert doc["pid"] == pid and len(doc["findings"]) == 14
        details = {f["name"]: f["detail"] for f in doc["findings"]}
        assert details["systemd unit"] == unit
        assert details["pidfile"].endswith("its pid, locked by it")
        assert details["parent"].startswith("init: pid 1")
