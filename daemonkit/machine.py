"""What machine a benchmark ran on, and where its two ends were allowed to run.

A latency figure means nothing without its machine: the kernel, the CPU, how many CPUs this
process may use, the Python and ZeroMQ builds. :func:`describe` reads them once per run
(``uname(2)``, ``/proc/cpuinfo``, ``sched_getaffinity(2)``); :func:`identity_differences`
tells whether two runs came from the same machine, so that ``--compare`` can refuse to set
numbers from different hardware side by side, as pyperf does.

Facts about pinning (``--cpu``):

* ``sched_setaffinity(2)`` with pid 0 pins the *calling thread* only; a forked child and a new
  thread inherit the mask of the thread that created them. Each end therefore pins itself.
* ``same`` puts both ends on one CPU: every round trip is then two context switches on that
  CPU and no cross-CPU wake-up. ``split`` puts them on two CPUs: no switch is needed, but each
  wake-up crosses CPUs (an inter-processor interrupt when the other CPU is idle).
* The mask a process may use can be narrower than the machine (``taskset``, cgroup cpusets),
  so the CPUs are taken from ``sched_getaffinity``, not from the CPU count; with one CPU
  allowed, ``split`` falls back to ``same`` and says so.

Facts that decide what a lesson can conclude (:func:`facts`, recorded under ``"facts"``):

* ``pcid`` / ``invpcid`` (``/proc/cpuinfo`` flags): the TLB tags its entries with an address-
  space id, and Linux >= 4.14 uses it, so switching to another process's page tables no longer
  flushes the TLB.
* The Meltdown mitigation (``/sys/devices/system/cpu/vulnerabilities/meltdown``): with KPTI
  ("Mitigation: PTI") every system call and interrupt switches page tables twice.
* ``hypervisor`` flag and DMI vendor/product: a virtual machine, whose vCPUs the host schedules.
* Cache sizes from ``/sys/devices/system/cpu/cpu0/cache/index*``: the last-level cache
  decides which working sets stay resident. A hypervisor may report the sum of several dies.
* The cpufreq governor, where the VM exposes one; CPython's version and whether its global
  interpreter lock is enabled (``sys._is_gil_enabled``, 3.13+; always on before).

*Lifetime*: nothing is created; the affinity of the calling thread is changed by the runner
and restored by it.
*See also*: sched_setaffinity(2), cpuset(7), taskset(1), uname(2), proc(5), sysfs(5)
(``/sys/devices/system/cpu``), Documentation/admin-guide/hw-vuln/ of the kernel.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CpuMode",
    "Placement",
    "describe",
    "facts",
    "identity_differences",
    "noted_differences",
    "placement",
]

CpuMode = Literal["same", "split", "none"]

# Two runs are "the same machine" when these agree; a kernel or Python upgrade is only noted.
_IDENTITY = ("hostname", "cpu_model", "cpu_count", "arch")
_NOTED = ("kernel", "python", "pyzmq", "libzmq")


@dataclass(frozen=True)
class Placement:
    """The CPUs each end is asked to run on (None: left to the scheduler)."""

    mode: CpuMode
    client_cpu: int | None
    peer_cpu: int | None
    note: str | None = None  # e.g. why `split` fell back to one CPU

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def placement(mode: CpuMode) -> Placement:
    """Choose CPUs for *mode* among those this process may use (``sched_getaffinity``)."""
    allowed = sorted(os.sched_getaffinity(0))
    if mode == "none":
        return Placement(mode, None, None)
    if mode == "same" or len(allowed) < 2:
        note = None
        if mode == "split":
            note = (
                f"split asked for two CPUs but only CPU {allowed[0]} is allowed: "
                "fell back to both ends on that CPU"
            )
        return Placement(mode, allowed[0], allowed[0], note)
    return Placement(mode, allowed[0], allowed[1])


def describe() -> dict[str, Any]:
    """The machine metadata stored in every result file."""
    uname = os.uname()
    pyzmq, libzmq = _zmq_versions()
    return {
        "hostname": socket.gethostname(),
        "kernel": f"{uname.sysname} {uname.release}",
        "arch": uname.machine,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": sys.version.replace("\n", " "),
        "pyzmq": pyzmq,
        "libzmq": libzmq,
        # The machine is shared: the load when the run started says how noisy it may be.
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "facts": facts(),
    }


_SYS_CPU = Path("/sys/devices/system/cpu")


def facts() -> dict[str, Any]:
    """CPU flags, KPTI, virtualization, caches, governor and the GIL: what lessons explain."""
    flags = _cpu_flags()
    caches = _caches()
    unified = [c for c in caches if c["type"] in ("Unified", "Data")]
    llc = max(unified, key=lambda c: (c["level"], c["size"]), default=None)
    return {
        "pcid": "pcid" in flags,
        "invpcid": "invpcid" in flags,
        "hypervisor": "hypervisor" in flags,
        "dmi": {k: _read(Path("/sys/class/dmi/id") / k) for k in ("sys_vendor", "product_name")},
        "meltdown": _read(_SYS_CPU / "vulnerabilities" / "meltdown"),
        "kpti": "PTI" in (_read(_SYS_CPU / "vulnerabilities" / "meltdown") or ""),
        "caches": caches,
        "llc_bytes": llc["size"] if llc else None,
        "governor": _read(_SYS_CPU / "cpu0" / "cpufreq" / "scaling_governor"),
        # CPUs kept from the scheduler (isolcpus=) or from the timer tick (nohz_full=): a
        # benchmark pinned there is not disturbed by other tasks; empty on most machines.
        "isolated": _read(_SYS_CPU / "isolated"),
        "nohz_full": _read(_SYS_CPU / "nohz_full"),
        "virtualization": _virtualization(flags),
        "python": platform.python_version(),
        "gil": _gil_enabled(),
    }


def _virtualization(flags: set[str]) -> str | None:
    """What the machine runs on: the hypervisor's name (``/sys/hypervisor/type``, else the
    DMI vendor) when the CPU says it is virtual (the ``hypervisor`` flag), None on bare metal."""
    if "hypervisor" not in flags:
        return None
    return (
        _read(Path("/sys/hypervisor/type"))
        or _read(Path("/sys/class/dmi/id/sys_vendor"))
        or "unknown hypervisor"
    )


def _read(path: Path) -> str | None:
    """A one-line sysfs value, or None where the machine does not expose it."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _size(text: str) -> int:
    """sysfs cache sizes: ``48K``, ``2048K``, ``32M``."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def _caches() -> list[dict[str, Any]]:
    """CPU 0's caches as sysfs lists them: level, type, size in bytes, CPUs sharing it."""
    out = []
    for index in sorted((_SYS_CPU / "cpu0" / "cache").glob("index[0-9]*")):
        level, kind, size = (_read(index / n) for n in ("level", "type", "size"))
        if level is None or kind is None or size is None:
            continue
        shared = _read(index / "shared_cpu_list")
        out.append({"level": int(level), "type": kind, "size": _size(size), "shared": shared})
    return out


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)  # 3.13+: a free-threaded build may run without
    return bool(check()) if check is not None else True


def identity_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old != new`` for each identity key that differs (empty: same machine)."""
    return [f"{k}: {old.get(k)!r} != {new.get(k)!r}" for k in _IDENTITY if old.get(k) != new.get(k)]


def noted_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Software differences worth a note (not a refusal) when comparing two runs."""
    return [f"{k}: {old.get(k)} -> {new.get(k)}" for k in _NOTED if old.get(k) != new.get(k)]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _zmq_versions() -> tuple[str | None, str | None]:
    try:
        import zmq
    except ImportError:
        return None, None
    return zmq.pyzmq_version(), zmq.zmq_version()
