"""Two network namespaces joined by a veth pair: real network stacks on one machine.

Each namespace has its own interfaces, routes and sockets; a packet from one to the other
leaves one stack through a veth end and enters the other stack, exactly as between hosts
(minus the wire). Addresses come from ``192.168.213.0/30`` and exist only inside the two
namespaces: no traffic can reach another host, and the host's own interfaces are untouched.

Names carry the test process's pid and a counter (``dk.PID.netns.Na``, interfaces
``dkPIDnNa``), so parallel test runs do not collide, and namespaces of a run that died can be
told apart and removed (:func:`remove_stale`). :func:`veth_pair` removes its namespaces on
every way out: deleting a namespace destroys the veth end inside it, and with it the pair.

*See also*: ip-netns(8), veth(4), tc(8), tc-tbf(8), tc-netem(8).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from facilities import require

__all__ = ["Link", "ready_line", "remove_stale", "serve_ports", "veth_pair"]

SERVER_IP = "192.168.213.1"
CLIENT_IP = "192.168.213.2"
_PREFIX = 30
_NAME_RE = re.compile(r"^dk\.(\d+)\.netns\.\d+[ab]$")
_counter = itertools.count()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@dataclass
class Link:
    """Namespace ``server`` (address SERVER_IP on ``server_dev``) and ``client``, joined."""

    server: str
    client: str
    server_dev: str
    client_dev: str
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def popen(self, ns: str, argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        """Start *argv* inside namespace *ns*; it is killed when the link is removed."""
        p: subprocess.Popen[str] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            text=True,
            **kw,  # type: ignore[call-overload]
        )
        self._procs.append(p)
        return p

    def run(self, ns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run *argv* inside *ns* to completion (bounded by *timeout*), output captured."""
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout
        )

    def tc(self, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``tc`` inside *ns*; not checked: the caller decides what a failure means."""
        return self.run(ns, ["tc", *args], timeout=10)

    def stop_processes(self) -> None:
        """SIGTERM what :meth:`popen` started, SIGKILL what is still there after 5 s."""
        for p in self._procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self._procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._procs.clear()


def remove_stale() -> None:
    """Delete namespaces of earlier test runs whose process is gone (killed mid-test)."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME_RE.match(name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _ip("netns", "del", name, check=False)


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        require("netns", "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        require("netns", "iproute2 (ip, tc) is not installed")


@contextlib.contextmanager
def veth_pair() -> Iterator[Link]:
    """Create the two namespaces and the veth pair; remove all of it on every path."""
    _skip_unless_possible()
    remove_stale()
    pid, n = os.getpid(), next(_counter)  # several pairs may exist at once
    ns, dev = f"dk.{pid}.netns.{n}", f"dk{pid}n{n}"  # interface names: 15 bytes at most
    link = Link(f"{ns}a", f"{ns}b", f"{dev}a", f"{dev}b")
    made: list[str] = []
    try:
        for ns in (link.server, link.client):
            r = _ip("netns", "add", ns, check=False)
            if r.returncode != 0:
                require("netns", f"ip netns add failed: {r.stderr.strip()}")
            made.append(ns)
        _ip("link", "add", link.server_dev, "netns", link.server, "type", "veth",
            "peer", "name", link.client_dev, "netns", link.client)  # fmt: skip
        for ns, dev, addr in (
            (link.server, link.server_dev, SERVER_IP),
            (link.client, link.client_dev, CLIENT_IP),
        ):
            _ip("-n", ns, "addr", "add", f"{addr}/{_PREFIX}", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield link
    finally:
        link.stop_processes()
        for ns in made:
            _ip("netns", "del", ns, check=False)  # takes its veth end, and so the pair, along


def ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line *proc* prints on stdout, within *timeout* s (the server's "serving ...")."""
    assert proc.stdout is not None
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        raise AssertionError(f"no line from {proc.args} within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"{proc.args} exited ({proc.wait()}) before printing a line")
    return line


def serve_ports(line: str) -> tuple[int, int | None]:
    """The ZeroMQ and plain TCP ports of a ``serving zmq-tcp on tcp://A:P, tcp on A:Q`` line."""
    m = re.match(r"serving zmq-tcp on tcp://\S+:(\d+), tcp on (?:\S+:(\d+)|off)", line)
    assert m, line
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None
