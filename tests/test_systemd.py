"""The units in services/ under a real systemd: PID 1 of a throw-away systemd-nspawn container.

One container is booted per module (about a second once the root filesystem is cached, see
tests/systemd_container.py); the project, its virtualenv and the Python behind it are bound in
read-only at their host paths, and the units are copied to /etc/systemd/system as a user would.
Every check reads what systemd itself reports (``systemctl show``, ``status``, the journal) or
what the kernel shows inside the container (``/proc``, the runtime directory).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from systemd_container import (
    CGROUP_PREFIX,
    Container,
    Unavailable,
    ensure_rootfs,
    python_binds,
    unavailable_reason,
)

pytestmark = pytest.mark.systemd

PROJECT = Path(__file__).resolve().parent.parent
SERVICES = PROJECT / "services"


def _cannot_run(reason: str) -> None:
    """Skip with the reason; where CI promises the container works, fail instead."""
    if os.environ.get("DAEMONKIT_REQUIRE_SYSTEMD") == "1":
        pytest.fail(f"systemd container required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"cannot boot systemd in a container: {reason}")


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


def _host_state() -> dict[str, object]:
    """What a container could leave behind on the host."""
    return {
        "mounts": Path("/proc/self/mountinfo").read_text(),
        "run_systemd": sorted(str(p) for p in Path("/run/systemd").rglob("*"))
        if Path("/run/systemd").exists()
        else [],
        "tmp_nspawn": sorted(str(p) for p in Path("/tmp").glob("nspawn*")),
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PREFIX}*")),
    }


def test_harness_boots_systemd_and_leaves_nothing_on_host(rootfs: Path) -> None:
    """systemd is PID 1 of its own pid namespace, a notify unit's start waits for READY=1, and
    after poweroff no process, cgroup, mount or /run entry of the container remains."""
    before = _host_state()
    with Container(rootfs) as ct:
        leader, nspawn_pid = ct.leader, ct._nspawn.pid if ct._nspawn else 0
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
        t0 = time.monotonic()
        ct.systemctl("start", "throwaway.service")
        took = time.monotonic() - t0
        shown = ct.show("throwaway.service", "ActiveState", "MainPID", "StatusText")
        assert took >= 1.0, f"start returned after {took:.2f} s, before READY=1 was sent"
        assert shown["ActiveState"] == "active"
        assert shown["StatusText"] == "throwaway ready"
        cmdline = ct.run("cat", f"/proc/{shown['MainPID']}/cmdline").stdout
        assert "throwaway-notify" in cmdline
    assert not Path(f"/proc/{nspawn_pid}").exists()
    assert not Path(f"/proc/{leader}").exists()
    assert _host_state() == before


# --- the project's units -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ct(rootfs: Path) -> Iterator[Container]:
    """One container for the module, with services/*.service installed as a user would."""
    units = sorted(SERVICES.glob("*.service"))
    if not units:
        pytest.fail("no units in services/", pytrace=False)
    with Container(rootfs, python_binds(PROJECT)) as container:
        container.run("cp", *map(str, units), "/etc/systemd/system/")
        container.systemctl("daemon-reload")
        yield container
