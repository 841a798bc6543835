"""The system facilities some tests need, and the one way a test says that it needs one.

A test that needs something this machine may lack is marked ``@pytest.mark.needs("name")``
or calls :func:`need` (for the facilities probed here) or, when it found out itself,
:func:`require` with the reason. Without the
facility the test skips with a one-line reason, so ``scripts/test`` is green on a fresh
machine. Where a machine promises the facility, a skip would hide a test that never ran:
``DAEMONKIT_REQUIRE`` (a comma-separated list of facility names, or ``all``) turns those
skips into failures. ``.ci/run`` sets ``DAEMONKIT_REQUIRE=all`` after installing everything.
``DAEMONKIT_REQUIRE_<NAME>=1`` (``NAME`` upper-cased, ``-`` as ``_``, e.g.
``DAEMONKIT_REQUIRE_SYSTEMD=1``) requires one facility the same way.

No tests here.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["FACILITIES", "check_requested", "missing", "need", "require", "required"]

# name -> what it is; the names DAEMONKIT_REQUIRE takes.
FACILITIES = {
    "mqueue": "a mounted /dev/mqueue (POSIX message queues listed by name)",
    "root": "running as root",
    "second-user": "root, setpriv(1) and a Python that the user nobody can run",
    "chromium": "chromium on PATH (Debian package chromium), for the report's browser tests",
    "systemd": "systemd booted in a container (systemd-nspawn, debootstrap, root)",
    "trace": "recording the scheduler's events (perf with tracefs)",
    "perf": "perf_event_open(2) counters",
    "systemd-analyze": "systemd-analyze(1), to verify the unit files",
    "logrotate": "logrotate(8), to parse the logrotate snippet",
    "shellcheck": "shellcheck(1), to lint the init script",
    "netns": "network namespaces with iproute2 (ip, tc; root)",
    "netem": "the netem queueing discipline (sch_netem)",
    "ipv6": "an IPv6 loopback",
    "timeout": "timeout(1) from coreutils",
    "two-cpus": "at least two CPUs this process may run on",
    "pids-cgroup": "a pids cgroup root may create and move a process into (v1 or v2)",
}

CHROMIUM = shutil.which("chromium") or "chromium"  # the browser the report tests run


def requested() -> set[str]:
    """The names in ``DAEMONKIT_REQUIRE`` (``all`` included as given; ``-name`` excepts one
    facility from ``all``)."""
    return {n.strip() for n in os.environ.get("DAEMONKIT_REQUIRE", "").split(",") if n.strip()}


def check_requested() -> None:
    """A name in ``DAEMONKIT_REQUIRE`` that is no facility (a typo) would require nothing."""
    unknown = sorted({n.removeprefix("-") for n in requested()} - {"all", *FACILITIES})
    if unknown:
        known = ", ".join(["all", *FACILITIES])
        raise pytest.UsageError(f"DAEMONKIT_REQUIRE: unknown facility {unknown[0]!r} ({known})")


def required(facility: str) -> bool:
    """True when the environment says this machine has *facility*: its absence is a failure."""
    assert facility in FACILITIES, f"unknown facility {facility!r}"
    names = requested()
    legacy = "DAEMONKIT_REQUIRE_" + facility.upper().replace("-", "_")
    if f"-{facility}" in names:
        return False
    return "all" in names or facility in names or os.environ.get(legacy) == "1"


def require(facility: str, reason: str) -> NoReturn:
    """*facility* is missing (*reason*, one line, says how): skip this test, or fail it when
    the environment requires the facility (:func:`required`)."""
    if required(facility):
        pytest.fail(f"{facility} is required here but missing: {reason}", pytrace=False)
    # Reported at the test's own line, not here (as @pytest.mark.skip does; pytest >= 8).
    raise pytest.skip.Exception(f"needs {facility}: {reason}", _use_item_location=True)


def need(facility: str) -> None:
    """Go on when *facility* is present (as probed by :func:`missing`); else :func:`require` it."""
    reason = missing(facility)
    if reason is not None:
        require(facility, reason)


def missing(facility: str) -> str | None:
    """Why *facility* is absent on this machine, or None when it is present."""
    if facility == "mqueue":
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        if not any(line.split()[1:3] == ["/dev/mqueue", "mqueue"] for line in mounts):
            return "/dev/mqueue is not mounted: POSIX queues exist but cannot be listed"
        return None
    if facility == "root":
        return None if os.geteuid() == 0 else "not running as root"
    if facility == "chromium":
        return None if shutil.which("chromium") else "chromium is not on PATH"
    if facility == "ipv6":
        if socket.has_ipv6 and Path("/proc/net/if_inet6").read_text().strip():
            return None
        return "no IPv6 on this machine"
    if facility == "two-cpus":
        cpus = len(os.sched_getaffinity(0))
        return None if cpus >= 2 else f"only {cpus} CPU may be used here"
    if facility in ("systemd-analyze", "logrotate", "shellcheck", "timeout"):
        return None if shutil.which(facility) else f"{facility} is not on PATH"
    raise AssertionError(f"{facility}: no probe here; the test calls require() itself")
