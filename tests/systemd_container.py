"""Boot a real systemd as PID 1 of a throw-away ``systemd-nspawn`` container and drive it.

The test machine's own PID 1 is not systemd, so units cannot be tried on it. A container can
still boot a real systemd (the host's version, 252) as its PID 1, in about a second once a root
filesystem exists. This module builds that root filesystem once, boots it with every write going
to a tmpfs, runs ``systemctl`` inside with ``nsenter``, and tears everything down again.

Steps of :meth:`Container.start`:

* make a cgroup of our own (both hierarchies on a hybrid v1/v2 host) and enter it before
  ``systemd-nspawn`` starts, so the container's processes and cgroups can be found and removed;
* ``setpriv --pdeathsig TERM``: if the test process dies, the kernel sends SIGTERM to nspawn,
  which asks the container's systemd for an orderly poweroff (``--kill-signal`` default);
* ``unshare --mount --propagation private`` plus a tmpfs on ``/run``: the mounts nspawn makes and
  the state it writes under ``/run/systemd`` live in a mount namespace that dies with it;
* ``systemd-nspawn --volatile=overlay``: the cached root is the read-only lower layer of an
  overlayfs whose upper layer is a tmpfs, so every boot starts clean and the cache is never
  written; ``--private-network``: the container gets only a loopback device;
* wait until ``systemctl is-system-running --wait`` inside says the boot finished.

Kernel path: clone(2) with CLONE_NEWNS|NEWPID|NEWIPC|NEWUTS|NEWNET|NEWCGROUP makes the
container's PID 1; ``nsenter -a`` calls setns(2) on each ``/proc/LEADER/ns/*`` file and forks, so
``systemctl`` runs in the container's namespaces and talks to its systemd over
``/run/systemd/private``. Processes inside are ordinary host processes, visible in the host's
``/proc`` under other pids.

Lifetime: the root filesystem cache is persistent (``/var/tmp``, reused by every run on the
machine); everything else (cgroup directories, namespaces, overlay tmpfs, console log) belongs
to one :class:`Container` and is gone after :meth:`Container.stop`. If the test process is
SIGKILLed, the parent-death signal still powers the container off, and the next run removes the
empty cgroups it left.

See also: systemd-nspawn(1), nsenter(1), unshare(1), setpriv(1), cgroups(7), namespaces(7),
debootstrap(8), flock(2), rename(2).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "CommandFailed",
    "Container",
    "Unavailable",
    "ensure_rootfs",
    "install_daemonkit",
    "python_binds",
    "unavailable_reason",
]

SUITE = "bookworm"  # Debian 12 ships systemd 252, the same as the host
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "procps")  # procps: /bin/kill
CACHE_DIR = Path(os.environ.get("DAEMONKIT_ROOTFS_CACHE", "/var/tmp"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "daemonkit-ct-"
# A clean environment for commands inside: the host's PATH, VIRTUAL_ENV or PYTHON* variables
# mean nothing in the container.
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
HOST_TOOLS = ("systemd-nspawn", "nsenter", "unshare", "setpriv")
_serial = itertools.count()


class CommandFailed(Exception):
    """A command inside the container exited non-zero; the message carries its output."""

    def __init__(self, cmd: Sequence[str], done: subprocess.CompletedProcess[str]) -> None:
        self.done = done
        out = (done.stdout + done.stderr).strip()
        super().__init__(f"{' '.join(cmd)!r} exited {done.returncode}: {out}")


class Unavailable(Exception):
    """This machine cannot boot the container; ``str(err)`` says why (tests skip with it)."""


def unavailable_reason() -> str | None:
    """Why this machine cannot run the container, or None if it can (rootfs aside)."""
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn creates namespaces and cgroups)"
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (install systemd-container, util-linux)"
    if not (CGROUP_ROOT / "unified").is_dir() and not (CGROUP_ROOT / "cgroup.procs").exists():
        return "no cgroup v2 hierarchy mounted under /sys/fs/cgroup"
    return None


# --- the cached root filesystem ---------------------------------------------------------------


def rootfs_path() -> Path:
    """Cache directory; its name carries a hash of the package list, so a new list is a new
    directory and no running test ever sees a root filesystem change under it."""
    digest = hashlib.sha256(f"{SUITE}:{','.join(PACKAGES)}".encode()).hexdigest()[:8]
    return CACHE_DIR / f"daemonkit-rootfs-{SUITE}-{digest}"


def ensure_rootfs() -> Path:
    """Return the cached root filesystem, building it with debootstrap the first time.

    Two test runs may start at once. The builder holds flock(2) on a lock file (the kernel
    drops the lock when the holder dies, even by SIGKILL), builds into a private temporary
    directory and rename(2)s it into place: rename within one filesystem is atomic, so the
    cache directory either does not exist or is complete. The loser of the race waits on the
    lock and then finds the finished cache.
    """
    root = rootfs_path()
    if root.is_dir():
        return root
    if shutil.which("debootstrap") is None:
        raise Unavailable(f"no cached root filesystem at {root} and no debootstrap to build it")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.with_name(root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks while another run builds
        if root.is_dir():
            return root
        for stale in root.parent.glob(root.name + ".tmp-*"):  # left by a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
        try:
            _debootstrap(tmp)
            os.rename(tmp, root)  # atomic: other runs now see a complete cache
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _debootstrap(target: Path) -> None:
    """Install a minimal Debian into ``target`` (about a minute and 244 MB, once)."""
    # debootstrap mounts /proc and /sys inside the target while it works; in a private mount
    # namespace those mounts cannot outlive it, even if it is killed.
    cmd = [
        *("unshare", "--mount", "--propagation", "private"),
        *("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"),
        *(SUITE, str(target)),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise Unavailable(f"debootstrap {SUITE} failed (mirror unreachable?): {tail}")
    # The downloaded .deb files are not needed to boot: 100 MB less to keep.
    subprocess.run(["chroot", str(target), "apt-get", "clean"], check=True)


# --- binds: the project, its virtualenv and the Python behind it -------------------------------


def python_binds(project: Path) -> list[Path]:
    """Host directories the container needs, each bound read-only at the same path.

    A virtualenv is not self-contained: its ``bin/python`` is a symlink to the interpreter it
    was made from (``sys.base_prefix``), scripts such as ``bin/daemonkit`` name the venv's
    python by absolute path in their ``#!`` line, and an editable install points back into the
    project. Binding all three at their host paths keeps every one of those absolute paths
    valid inside.
    """
    wanted = [project.resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    binds: list[Path] = []
    for path in wanted:
        if not any(path == b or path.is_relative_to(b) for b in binds):
            binds.append(path)
    return binds


# --- the container ------------------------------------------------------------------------------


class Container:
    """One booted container. Use as a context manager; :meth:`stop` is idempotent."""

    _nspawn: subprocess.Popen[bytes] | None = None
    nspawn_pid = 0  # systemd-nspawn, the container's supervisor, as a host pid
    leader = 0  # the container's PID 1, as a host pid

    def __init__(self, rootfs: Path, binds: Sequence[Path] = ()) -> None:
        self.rootfs = rootfs
        self.binds = list(binds)  # read-only, each at its host path
        self.name = f"dk{os.getpid()}-{next(_serial)}"  # unique: cgroup and machine name
        self.cgroups = _cgroup_dirs(CGROUP_PREFIX + self.name)
        self._console: IO[bytes] | None = None

    def __enter__(self) -> Container:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # The steps of a boot, in order.

    def start(self, timeout: float = 60.0) -> None:
        """Boot the container and wait until its systemd reports the boot finished."""
        remove_stale_cgroups()
        try:
            self._make_cgroups()
            self._spawn_nspawn()
            self._find_leader(timeout)
            self._wait_booted(timeout)
        except BaseException:
            self.stop()
            raise

    def _make_cgroups(self) -> None:
        for cg in self.cgroups:
            cg.mkdir()

    def _spawn_nspawn(self) -> None:
        nspawn = [
            *("systemd-nspawn", "--quiet", "--directory", str(self.rootfs)),
            *("--volatile=overlay", "--register=no", "--keep-unit", "--private-network"),
            *("--machine", self.name, "--console=pipe"),
            *(f"--bind-ro={path}" for path in self.binds),
            # firstboot would wait for a keyboard that is not there
            *("--boot", "systemd.mask=systemd-firstboot.service"),
        ]
        enter_cgroups = 'for cg in $CGS; do echo $$ > "$cg/cgroup.procs" || exit 1; done'
        cmd = [
            # 1. this shell moves itself into our cgroups and execs the rest, so nspawn and
            #    everything it forks start inside them.
            *("sh", "-c", f'{enter_cgroups}; exec "$@"'),
            "sh",
            # 2. SIGTERM to nspawn if the test process dies: it powers the container off.
            *("setpriv", "--pdeathsig", "TERM"),
            # 3. a private mount namespace with its own /run.
            *("unshare", "--mount", "--propagation", "private"),
            *("sh", "-c", 'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "sh"),
            *nspawn,
        ]
        env = {"PATH": INSIDE_ENV["PATH"], "CGS": " ".join(str(cg) for cg in self.cgroups)}
        # Unlinked at once (nothing left on disk); closed by stop(), not by a with-block.
        self._console = tempfile.TemporaryFile()  # noqa: SIM115
        self._nspawn = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._console, stderr=subprocess.STDOUT, env=env
        )
        self.nspawn_pid = self._nspawn.pid

    def _find_leader(self, timeout: float) -> None:
        """The container's PID 1 is the child nspawn forks (its own pid is Popen's pid: the
        shells and unshare exec'd into it)."""
        assert self._nspawn is not None
        pid = self._nspawn.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited early:\n{self.console_log()}")
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                comm = Path(f"/proc/{kids[0]}/comm").read_text().strip() if kids else ""
            except FileNotFoundError:
                comm = ""
            if comm == "systemd":
                self.leader = int(kids[0])
                return
            time.sleep(0.05)
        raise TimeoutError(f"no systemd in the container after {timeout} s")

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            # --wait blocks until the boot job queue is empty; before systemd listens on its
            # private socket it fails at once, hence the loop.
            done = self.run(
                "systemctl", "is-system-running", "--wait", check=False, timeout=timeout
            )
            state = done.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"boot did not finish in {timeout} s (state {state!r})")

    # Driving it.

    def run(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = 60.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the container (all its namespaces, its root and cwd /)."""
        if not self.leader:
            raise RuntimeError("container is not running")
        done = subprocess.run(
            ["nsenter", "--target", str(self.leader), "--all", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env={**INSIDE_ENV, **(env or {})},
            check=False,
        )
        if check and done.returncode != 0:
            raise CommandFailed(cmd, done)
        return done

    def spawn(self, *cmd: str) -> subprocess.Popen[str]:
        """Start ``cmd`` inside without waiting; the caller reads its stdout and waits."""
        if not self.leader:
            raise RuntimeError("container is not running")
        return subprocess.Popen(
            ["nsenter", "--target", str(self.leader), "--all", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env=INSIDE_ENV,
        )

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        out = self.systemctl("show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write_file(self, path: str, text: str) -> None:
        """Create ``path`` inside (on the overlay's tmpfs: gone at poweroff)."""
        self.run("mkdir", "-p", str(Path(path).parent))
        self.run("sh", "-c", 'cat > "$1"', "sh", path, input=text)

    def install_units(self, units: Sequence[Path]) -> None:
        """Put unit files in /etc/systemd/system, as an administrator would, and reload."""
        for unit in units:
            self.write_file(f"/etc/systemd/system/{unit.name}", unit.read_text())
        self.systemctl("daemon-reload")

    def console_log(self) -> str:
        if self._console is None:
            return ""
        self._console.seek(0)
        return self._console.read().decode(errors="replace")

    # Teardown.

    def stop(self, timeout: float = 30.0) -> None:
        """Power the container off, wait for nspawn, remove our cgroups. Idempotent."""
        if self._nspawn is not None:
            if self.leader and self._nspawn.poll() is None:
                # poweroff returns before the container is gone (or fails as the manager
                # goes away under it); the wait below is what counts, and a hung systemctl
                # only means nspawn gets SIGKILL there.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.run("systemctl", "poweroff", check=False, timeout=timeout)
            try:
                self._nspawn.wait(timeout)
            except subprocess.TimeoutExpired:
                # When the init of a pid namespace dies the kernel SIGKILLs every other
                # process in it; nspawn then sees its child gone and exits. Killing nspawn
                # alone would orphan the container.
                if self.leader:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.leader, signal.SIGKILL)
                try:
                    self._nspawn.wait(10)
                except subprocess.TimeoutExpired:
                    self._nspawn.kill()
                    self._nspawn.wait()
            self._nspawn = None
            self.leader = 0
        for cg in self.cgroups:
            _remove_cgroup(cg)
        if self._console is not None:
            self._console.close()
            self._console = None


def _cgroup_dirs(name: str) -> list[Path]:
    """Our cgroup in each hierarchy systemd uses: v1 name=systemd plus v2 on a hybrid host."""
    if (CGROUP_ROOT / "unified").is_dir():
        return [CGROUP_ROOT / "systemd" / name, CGROUP_ROOT / "unified" / name]
    return [CGROUP_ROOT / name]


def _remove_cgroup(top: Path, timeout: float = 5.0) -> None:
    """rmdir(2) a cgroup tree bottom-up; a cgroup can only go once it has no processes, and
    the kernel may take a moment after the last one exits."""
    deadline = time.monotonic() + timeout
    while top.exists():
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        try:
            for d in [*dirs, top]:
                d.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _cgroup_empty(top: Path) -> bool:
    return all(not procs.read_text().strip() for procs in top.rglob("cgroup.procs"))


def remove_stale_cgroups() -> None:
    """Remove cgroups left by a run that was SIGKILLed: empty ones whose owner (the pid in
    the name) is dead. A live owner may have made its cgroup and not yet entered it."""
    for hierarchy in {cg.parent for cg in _cgroup_dirs("x")}:
        for top in hierarchy.glob(CGROUP_PREFIX + "*"):
            owner = top.name.removeprefix(CGROUP_PREFIX + "dk").split("-")[0]
            if owner.isdigit() and Path(f"/proc/{owner}").exists():
                continue
            if _cgroup_empty(top):
                _remove_cgroup(top, timeout=0.5)


def install_daemonkit(ct: Container, project: Path) -> None:
    """The README's install steps, inside: the venv's script where the units expect it
    (/usr/local/bin/daemonkit), the units of services/ copied unchanged to /etc.

    A checkout under /tmp or /var/tmp (a CI clone, say) would be invisible to the units:
    ``PrivateTmp=yes`` gives each service an empty /tmp of its own, so the venv's script
    would fail with 203/EXEC. A drop-in for every ``daemonkit-*`` unit binds those paths
    into the service's private /tmp, read-only (the units themselves stay as written).
    """
    ct.run("ln", "-sf", str(Path(sys.prefix) / "bin" / "daemonkit"), "/usr/local/bin/daemonkit")
    hidden = [p for p in ct.binds if p.is_relative_to("/tmp") or p.is_relative_to("/var/tmp")]
    if hidden:
        ct.write_file(
            "/etc/systemd/system/daemonkit-.service.d/host-paths.conf",  # all daemonkit-*
            "[Service]\n" + "".join(f"BindReadOnlyPaths={p}\n" for p in hidden),
        )
    ct.install_units(sorted((project / "services").glob("*.service")))


# --- command line: scripts/systemd-container ----------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="systemd-container",
        description="Boot systemd in a throw-away container with this project bound in.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("rootfs", help="build the cached root filesystem (once per machine)")
    run = sub.add_parser("run", help="boot, install services/*.service, run CMD, power off")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="command inside (default: a shell)")
    args = parser.parse_args(argv)
    project = Path(__file__).resolve().parent.parent
    try:
        reason = unavailable_reason()
        if reason:
            raise Unavailable(reason)
        rootfs = ensure_rootfs()
    except Unavailable as err:
        print(f"systemd-container: {err}", file=sys.stderr)
        return 1
    if args.action == "rootfs":
        print(rootfs)
        return 0
    with Container(rootfs, python_binds(project)) as ct:
        install_daemonkit(ct, project)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        argv_inside = ["nsenter", "--target", str(ct.leader), "--all", *(cmd or ["bash"])]
        return subprocess.run(argv_inside, env=INSIDE_ENV, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
