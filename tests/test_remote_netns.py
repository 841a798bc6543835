"""Across real network stacks: ``serve`` in one network namespace, the client in another,
joined by a veth pair; then the link is shaped with ``tc`` and the figures must follow.

Only the two namespaces' private addresses (192.168.213.1 and .2) are ever contacted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from facilities import require
from netns import CLIENT_IP, SERVER_IP, Link, ready_line, serve_ports, veth_pair

DK = [sys.executable, "-m", "daemonkit"]


@pytest.fixture(scope="module")
def link() -> Iterator[tuple[Link, str]]:
    """The namespaces, with ``daemonkit serve`` running in the server one."""
    with veth_pair() as lk:
        proc = lk.popen(
            lk.server,
            [*DK, "serve", "--bind", f"tcp://{SERVER_IP}:5555", "--max-size", "1M"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        zmq_port, tcp_port = serve_ports(ready_line(proc, 10))
        assert (zmq_port, tcp_port) == (5555, 5556)
        yield lk, f"tcp://{SERVER_IP}:5555"
        proc.terminate()
        assert proc.wait(5) == 0  # a clean stop on SIGTERM, inside its namespace too


def bench(lk: Link, url: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    r = lk.run(lk.client, [*DK, "bench", "--connect", url, "--json", str(out), *args], 60)
    assert r.returncode == 0, r.stderr
    results: dict[str, Any] = {x["channel"]: x for x in json.loads(out.read_text())["results"]}
    return results


def throughput(lk: Link, url: str, tmp_path: Path, size: str, count: int) -> dict[str, Any]:
    out = tmp_path / "thr.json"
    argv = [*DK, "throughput", "--connect", url, "--sizes", size, "--count", str(count)]
    r = lk.run(lk.client, [*argv, "--warmup", "4", "--json", str(out)], 60)
    assert r.returncode == 0, r.stderr
    row: dict[str, Any] = json.loads(out.read_text())["results"][0]
    assert row["verified"]["messages"] == count
    return row


def test_namespaces_are_separate_stacks(link: tuple[Link, str]) -> None:
    lk, _ = link
    shown = lk.run(lk.client, ["ip", "-brief", "addr"], 10).stdout
    assert CLIENT_IP in shown and SERVER_IP not in shown  # the server's address is not here
    route = lk.run(lk.client, ["ip", "route", "get", SERVER_IP], 10).stdout
    assert f"dev {lk.client_dev}" in route  # the only way there is through the veth


def test_bench_connect_across_namespaces(link: tuple[Link, str], tmp_path: Path) -> None:
    lk, url = link
    rx_before = rx_bytes(lk)
    res = bench(lk, url, tmp_path, "--sizes", "1K", "--iterations", "500", "--warmup", "50")
    assert set(res) == {"zmq-tcp", "tcp"}
    for r in res.values():
        assert r["error"] is None and r["peer"] == "remote"
        assert r["verified"]["sizes"] == 500 and r["verified"]["checksums"] >= 1
    # The server's veth end received every request's payload: the traffic crossed the pair.
    assert rx_bytes(lk) - rx_before >= 2 * 550 * 1024


def rx_bytes(lk: Link) -> int:
    """Bytes the kernel counted into the server's veth end (in its namespace's /sys)."""
    stat = f"/sys/class/net/{lk.server_dev}/statistics/rx_bytes"
    return int(lk.run(lk.server, ["cat", stat], 10).stdout)


def test_netem_delay_moves_p50(link: tuple[Link, str], tmp_path: Path) -> None:
    lk, url = link
    netem = ("qdisc", "add", "dev", lk.client_dev, "root", "netem", "delay", "1ms")
    probe = lk.tc(lk.client, *netem)  # first: is there a netem at all?
    if probe.returncode != 0:
        require("netem", f"no netem in this kernel (tc: {probe.stderr.strip()})")
    lk.tc(lk.client, "qdisc", "del", "dev", lk.client_dev, "root")
    args = ("--channels", "tcp", "--sizes", "64", "--iterations", "300", "--warmup", "30")
    before = bench(lk, url, tmp_path, *args)["tcp"]["latency_ns"]["p50"]
    assert lk.tc(lk.client, *netem).returncode == 0
    try:
        after = bench(lk, url, tmp_path, *args)["tcp"]["latency_ns"]["p50"]
    finally:
        lk.tc(lk.client, "qdisc", "del", "dev", lk.client_dev, "root")
    # 1 ms on the client's egress only: each round trip crosses it once (the request).
    added_ms = (after - before) / 1e6
    assert 0.8 <= added_ms <= 3.0, f"p50 {before / 1e3:.0f} -> {after / 1e3:.0f} µs"


def test_tbf_rate_limits_throughput(link: tuple[Link, str], tmp_path: Path) -> None:
    lk, url = link
    free = throughput(lk, url, tmp_path, "64K", 48)  # 3 MiB unshaped
    rate_mb_s = 1.0  # 8 mbit/s = 1 MB/s
    r = lk.tc(lk.client, "qdisc", "add", "dev", lk.client_dev, "root",
              "tbf", "rate", "8mbit", "burst", "32kbit", "latency", "100ms")  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        shaped = throughput(lk, url, tmp_path, "64K", 24)  # 1.5 MiB: about 1.6 s at 1 MB/s
    finally:
        lk.tc(lk.client, "qdisc", "del", "dev", lk.client_dev, "root")
    # Payload MB/s sits a little under the line rate (TCP/IP headers, ZeroMQ framing).
    assert 0.5 * rate_mb_s <= shaped["mb_per_s"] <= 1.3 * rate_mb_s, shaped
    assert free["mb_per_s"] > 3 * shaped["mb_per_s"], (free, shaped)


def test_namespaces_removed_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError), veth_pair() as lk:
        names = (lk.server, lk.client)
        sleeper = lk.popen(lk.server, ["sleep", "30"])
        raise RuntimeError("a failing test body")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names)
    assert sleeper.returncode is not None  # stopped and reaped, not left running
