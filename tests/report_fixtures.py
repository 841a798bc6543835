"""Small results documents for the report tests, shaped exactly like the producers' JSON.

Used where a real run would be too slow or could not produce a case (an older run to compare
with, a failed channel, several placements). Values are deterministic pseudo-random draws, not
measurements, and the tests only check how they are drawn, never what they say.
"""

from __future__ import annotations

import math
import random
from typing import Any

BENCH_SCHEMA = "daemonkit.bench/1"


def _histogram(samples: list[float]) -> dict[str, Any]:
    lo, hi = math.floor(math.log2(min(samples))), math.ceil(math.log2(max(samples))) + 1
    edges = [2.0 ** (e / 4) for e in range(lo * 4, hi * 4 + 1)]
    counts = [0] * (len(edges) - 1)
    for s in samples:
        i = max(0, min(len(counts) - 1, int((math.log2(s) - lo) * 4)))
        counts[i] += 1
    return {"edges_ns": [round(e) for e in edges], "counts": counts}


def _pct(sorted_s: list[float], q: float) -> float:
    return sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))]


def bench_result(
    channel: str, peer: str, cpu: str, size: int, base_ns: float, seed: int, n: int = 400
) -> dict[str, Any]:
    rng = random.Random(seed)
    s = sorted(base_ns * (1 + size / 2e5) * rng.lognormvariate(0, 0.35) for _ in range(n))
    mean = sum(s) / n
    payload = not channel.startswith(("signal", "eventfd", "th-event"))
    return {
        "channel": channel,
        "peer": peer,
        "cpu": cpu,
        "size": size,
        "payload": payload,
        "iterations": n,
        "latency_ns": {
            "min": s[0],
            "p50": _pct(s, 0.5),
            "p90": _pct(s, 0.9),
            "p99": _pct(s, 0.99),
            "p999": _pct(s, 0.999),
            "max": s[-1],
            "mean": mean,
            "stdev": math.sqrt(sum((x - mean) ** 2 for x in s) / n),
        },
        "roundtrips_per_s": 1e9 / mean,
        "mb_per_s": (2 * size * 1e9 / mean / 1e6) if payload and size else None,
        "ctx_switches_per_roundtrip": {
            "voluntary": {"client": 1.0, "peer": 1.0},
            "involuntary": {"client": 0.01, "peer": 0.0},
        },
        "error": None,
        "skipped": None,
        "histogram": _histogram(s),
    }


CHANNELS = (("pipe", 12000.0), ("unix-stream", 15000.0), ("eventfd", 9000.0))


def bench_doc(
    scale: float = 1.0, date: str = "2026-11-27T06:00:00Z", small: bool = False
) -> dict[str, Any]:
    """Three channels, both peers, three sizes, three placements, one failed channel
    (``small``: pipe alone at size 0 on one CPU, for tests that need a quick picture)."""
    results = []
    seed = 1
    for ch, base in CHANNELS[:1] if small else CHANNELS:
        for peer in ("thread", "process"):
            sizes = [0] if ch == "eventfd" or small else [0, 4096, 65536]
            for size in sizes:
                seed += 1
                p_base = base * scale * (1.3 if peer == "process" else 1.0)
                results.append(bench_result(ch, peer, "same", size, p_base, seed))
            for cpu, f in () if small else (("split", 2.1), ("none", 1.6)):
                seed += 1
                results.append(bench_result(ch, peer, cpu, 0, base * scale * f, seed))
    failed = bench_result("posix-mq", "process", "same", 0, 1, 0)
    failed.update(
        latency_ns=None,
        roundtrips_per_s=None,
        mb_per_s=None,
        ctx_switches_per_roundtrip=None,
        histogram=None,
        error="posix-mq: /dev/mqueue not mounted",
    )
    results.append(failed)
    return {
        "schema": BENCH_SCHEMA,
        "created": date,
        "command": ["daemonkit", "bench"],
        "options": {},
        "machine": {
            "hostname": "fixture",
            "kernel": "6.1.0",
            "cpu_model": "Test CPU",
            "cpu_count": 2,
            "python": "3.11.2",
        },
        "timer_overhead_ns": 45.0,
        "results": results,
    }


def _spread(median: float, rng: random.Random) -> dict[str, float]:
    lo, hi = median * (1 - 0.1 * rng.random()), median * (1 + 0.1 * rng.random())
    return {"median": median, "min": lo, "max": hi, "n": 3}


def _verdict(claim: str, label: str) -> dict[str, Any]:
    """A verdict as daemonkit.lessons/2 stores it: string keys and the figures filling them."""
    return {
        "claim": claim,
        "label": label,
        "text": "verdict.failed",
        "threshold": "ui.no_threshold",
        "extra": [],
        "why": [],
        "figures": {"failed": [f"{claim} measured"]},
        "decisions": [],
    }


def lessons_doc(scale: float = 1.0, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """ctx-switch (sweep + placement), creation, and a lesson without a plot (``only``:
    just the lessons named)."""
    rng = random.Random(7)
    sweep = []
    for w in (0, 16384, 1 << 20):
        row: dict[str, Any] = {"w": w, "n": 100}
        for kind, base in (("thread", 2500.0), ("process", 3200.0)):
            per = base * scale * (1 + w / 2e5)
            row[kind] = {
                "rtt_ns": _spread(2 * per + 9000, rng),
                "switches_per_rtt": 2.0,
                "voluntary_per_rtt": 1.0,
                "switch_ns": _spread(per, rng),
            }
        sweep.append(row)
    placement = [
        {
            "placement": p,
            "w": 0,
            "n": 100,
            "thread": {"rtt_ns": _spread(f * 14000 * scale, rng)},
            "process": {"rtt_ns": _spread(f * 15000 * scale, rng)},
        }
        for p, f in (("one", 1.0), ("split", 1.3))
    ]
    placement.append({"placement": "none", "unavailable": "one CPU allowed"})
    sizes = [
        {
            "rss": rss,
            **{
                m: {"median": t, "p10": t * 0.9, "p90": t * 1.2, "n": 3, "samples": [t, t, t]}
                for m, t in (
                    ("thread", 4e5),
                    ("fork", 2.6e6 * f),
                    ("fork+exec", 3.2e6 * f),
                    ("posix_spawn", 1.1e6),
                )
            },
        }
        for rss, f in ((17 << 20, 1.0), (1 << 30, 3.0))
    ]
    lessons = [
        {
            "name": "ctx-switch",
            "claims": ["C2", "C3"],
            "seconds": 1.0,
            "measurements": {
                "cpu": 0,
                "reps": 3,
                "perf_unavailable": "no counters",
                "sweep": sweep,
                "placement": placement,
            },
            "verdicts": [_verdict("C2", "partly holds"), _verdict("C3", "does not hold")],
        },
        {
            "name": "creation",
            "claims": ["C3b"],
            "seconds": 1.0,
            "measurements": {"sizes": sizes, "rss_after_release": 17 << 20},
            "verdicts": [_verdict("C3b", "holds")],
        },
        {
            "name": "address-space",
            "claims": ["C1"],
            "seconds": 0.1,
            "measurements": {
                "thread_write": {"written": 42, "main_reads": 42},
                "fd_close": {"open_after_thread_close": False, "open_after_child_close": True},
            },
            "verdicts": [_verdict("C1", "holds")],
        },
    ]
    lessons = [x for x in lessons if not only or x["name"] in only]
    return {
        "schema": "daemonkit.lessons/2",
        "created": "2026-11-27T06:00:00Z",
        "lang": "en",
        "quick": True,
        "machine": {
            "hostname": "fixture",
            "kernel": "6.1.0",
            "cpu_model": "Test CPU",
            "cpu_count": 2,
            "cpus_allowed": [0, 1],
            "python": "3.11.2",
        },
        "lessons": lessons,
    }


def throughput_doc() -> dict[str, Any]:
    """A ``daemonkit throughput`` document: three sizes and one that failed."""
    machine = bench_doc(small=True)["machine"]
    rows: list[dict[str, Any]] = []
    for size, rate in ((64, 55_000.0), (1024, 61_000.0), (16384, 12_800.0)):
        rows.append(
            {
                "channel": "zmq-tcp",
                "size": size,
                "messages": 10_000,
                "seconds": 10_000 / rate,
                "messages_per_s": rate,
                "mb_per_s": rate * size / 1e6,
                "tail_ns": 50_000_000,
                "verified": {"messages": 10_000, "bytes": 10_000 * size},
            }
        )
    rows.append({"channel": "zmq-tcp", "size": 2 << 20, "error": "zmq-tcp: too large"})
    return {
        "schema": "daemonkit.throughput/1",
        "created": "2026-11-27T06:30:00Z",
        "command": ["daemonkit", "throughput"],
        "connect": "tcp://127.0.0.1:5555",
        "machine": machine,
        "remote_peer": machine,
        "results": rows,
    }
