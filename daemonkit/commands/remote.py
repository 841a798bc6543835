"""Sub-commands ``serve`` and ``throughput``, and the ``--connect`` option of ``bench``.

``serve`` runs the echo peer of :mod:`daemonkit.remote.serve` in the foreground until SIGTERM
or Ctrl-C; it prints one line to stdout once both endpoints are bound (scripts and tests wait
for it). ``throughput`` streams messages to a server (:mod:`daemonkit.remote.throughput`).
``bench --connect`` (registered here, dispatched by :mod:`daemonkit.commands.bench`) measures
round trips to a server with the local runner (:mod:`daemonkit.bench.targets.remote`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemonkit.commands.options import (
    add_output_option,
    is_stdout,
    parse_count,
    parse_seconds,
    parse_sizes,
    write_output,
)
from daemonkit.remote.wire import Address, parse_address

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["add_bench_connect", "register"]

DEFAULT_BIND = "tcp://127.0.0.1:5555"
DEFAULT_MAX_SIZE = 4 << 20


def _address(text: str) -> Address:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _one_size(text: str) -> int:
    sizes = parse_sizes(text)
    if len(sizes) != 1 or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one size of at least 1 byte")
    return sizes[0]


_NO_TCP = -1


def _port(text: str) -> int:
    if text == "none":
        return _NO_TCP
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535) or 'none'")
    return int(text)


def add_bench_connect(bench: argparse.ArgumentParser) -> None:
    """``bench --connect tcp://HOST:PORT``."""
    bench.add_argument(
        "--connect",
        type=_address,
        metavar="tcp://HOST:PORT",
        help="measure zmq-tcp and tcp round trips to a 'daemonkit serve' at HOST:PORT "
        "instead of local peers (results have peer 'remote')",
    )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve`` and ``throughput`` to the CLI."""
    s = sub.add_parser(
        "serve",
        help="echo peer for zmq-tcp and tcp that 'bench --connect' measures across hosts",
        description="Echo every message that arrives over ZeroMQ (ROUTER) and plain TCP, until "
        "SIGTERM or Ctrl-C. Binds to loopback (127.0.0.1) unless --bind names another address: "
        "only then can other hosts reach it. Limits keep a stray client from exhausting "
        "memory: ZMQ_MAXMSGSIZE and high-water marks, a TCP connection count, a message size.",
    )
    s.add_argument(
        "--bind",
        type=_address,
        default=_address(DEFAULT_BIND),
        metavar="tcp://ADDR:PORT",
        help=f"ZeroMQ endpoint (default {DEFAULT_BIND}: loopback only; port 0: any free port)",
    )
    s.add_argument(
        "--tcp-port",
        type=_port,
        metavar="N",
        help="plain TCP port on the same address (default PORT+1; 0: any free; 'none': off)",
    )
    s.add_argument(
        "--max-size",
        type=_one_size,
        default=DEFAULT_MAX_SIZE,
        metavar="SIZE",
        help="largest message accepted, K and M suffixes (default 4M); larger: disconnected",
    )
    s.add_argument(
        "--max-connections",
        type=parse_count,
        default=8,
        metavar="N",
        help="plain TCP clients served at once (default 8); more are closed at once",
    )
    s.add_argument(
        "--idle-timeout",
        type=parse_seconds,
        default=60.0,
        metavar="S",
        help="close a plain TCP connection silent for S seconds (default 60)",
    )
    s.set_defaults(func=cmd_serve)

    t = sub.add_parser(
        "throughput",
        help="stream zmq-tcp messages to a 'daemonkit serve': messages/s and MB/s by size",
        description="Pipelined sends as pyzmq's perf throughput test: COUNT messages of each "
        "size back to back, then one flush whose reply confirms how many arrived.",
    )
    t.add_argument("--connect", type=_address, required=True, metavar="tcp://HOST:PORT")
    t.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("64,1K,16K,256K"),
        metavar="64,1K,...",
        help="message sizes (default 64,1K,16K,256K)",
    )
    t.add_argument(
        "--count", type=parse_count, default=10_000, metavar="N", help="messages per size"
    )
    t.add_argument(
        "--warmup", type=parse_count, default=10, metavar="N", help="untimed messages first"
    )
    add_output_option(t, "--json", "write the results document")
    t.set_defaults(func=cmd_throughput)


def cmd_serve(args: argparse.Namespace) -> int:
    from daemonkit.errors import UsageError
    from daemonkit.remote.serve import ServeOptions, Server, log

    bind: Address = args.bind
    tcp_port: int | None = args.tcp_port
    if tcp_port is None:  # not given: the port after PORT (or any free one after port 0)
        tcp_port = bind.port + 1 if bind.port else 0
        if tcp_port > 65535:
            raise UsageError("--bind port 65535 has no port after it: give --tcp-port")
    elif tcp_port == _NO_TCP:
        tcp_port = None
    opts = ServeOptions(bind, tcp_port, args.max_size, args.max_connections, args.idle_timeout)
    with Server(opts) as server:
        server.open()
        tcp = "off"
        if server.tcp_address:
            tcp = Address(*server.tcp_address).zmq_url.removeprefix("tcp://")  # [v6]:port
        print(
            f"serving zmq-tcp on {server.zmq_url}, tcp on {tcp} "
            f"(max message {opts.max_size} B, HWM {server.hwm}, "
            f"{opts.max_connections} TCP connections); SIGTERM or Ctrl-C stops",
            flush=True,
        )
        if not bind.is_loopback:
            log(f"bound to {bind.host}: reachable from other hosts, not only this one")
        return server.run()


def cmd_throughput(args: argparse.Namespace) -> int:
    import json

    from daemonkit import machine
    from daemonkit.bench import views
    from daemonkit.errors import ChannelError
    from daemonkit.remote.client import RemoteServer
    from daemonkit.remote.throughput import SCHEMA, measure

    if args.json is not None and not is_stdout(args.json):
        from daemonkit.bench.results import check_writable

        check_writable(args.json)  # found out now, not after the measurement
    rows: list[dict[str, Any]] = []
    with RemoteServer(args.connect) as server:
        for size in args.sizes:
            try:
                rows.append(measure(server, size, args.count, args.warmup).as_dict())
            except ChannelError as exc:
                rows.append({"channel": "zmq-tcp", "size": size, "error": str(exc)})
        peer_machine = server.settings["machine"]
    if args.json:
        doc = {
            "schema": SCHEMA,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "connect": args.connect.zmq_url,
            "machine": machine.describe(),
            "remote_peer": peer_machine,
            "results": rows,
        }
        write_output(args.json, json.dumps(doc, indent=1) + "\n")
    _print_throughput(views.console(stderr=is_stdout(args.json)), rows, args.connect.zmq_url)
    return 1 if any("error" in r for r in rows) else 0


def _print_throughput(out: Console, rows: list[dict[str, Any]], where: str) -> None:
    from rich.table import Table

    from daemonkit.units import fmt_count, fmt_ns, fmt_rate, fmt_size, fmt_size_short

    t = Table(title=f"zmq-tcp throughput to {where} (pipelined)", title_justify="left")
    for col in ("size", "messages", "time", "messages/s", "MB/s", "tail"):
        t.add_column(col, justify="right")
    for r in rows:
        if "error" in r:
            continue
        t.add_row(
            fmt_size_short(r["size"]),
            fmt_count(r["messages"]),
            fmt_ns(r["seconds"] * 1e9),
            fmt_count(r["messages_per_s"]),
            fmt_rate(r["mb_per_s"]),
            fmt_ns(r["tail_ns"]),
        )
    out.print(t)
    for r in rows:
        if "error" in r:
            out.print(f"FAILED  zmq-tcp {fmt_size(r['size'])}: {r['error']}", markup=False)
