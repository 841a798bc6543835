"""The run-quality warning: each condition on both sides of its threshold, from documents."""

from __future__ import annotations

from typing import Any

from daemonkit.bench.quality import SPREAD_LIMIT, assess, batch_spread, warning_line
from daemonkit.bench.results import Result, Run


def _run(results: list[Result], load: float = 0.5, cpus: int = 2) -> Run:
    machine: dict[str, Any] = {
        "cpu_count": cpus,
        "load_avg": [load, load, load],
        "pinning": {"mode": "split", "requested_client": 0, "requested_peer": 1},
    }
    return Run("2026-11-29T00:00:00+00:00", ["daemonkit"], {}, machine, 40.0, results)


def _result(
    batches: list[float], client: list[int], peer: list[int], who: str = "process"
) -> Result:
    return Result("pipe", who, "split", 64, True, batch_p50_ns=batches,
                  ran_on={"client": client, "peer": peer})  # fmt: skip


STEADY = [1000.0, 1020.0, 1050.0]  # 5 % apart: under the limit


def test_a_steady_quiet_well_placed_run_has_no_warning() -> None:
    f = assess(_run([_result(STEADY, [0], [1])], load=1.9))
    assert not f.unreliable and warning_line(f) is None


def test_load_above_the_cpu_count_is_named() -> None:
    line = warning_line(assess(_run([_result(STEADY, [0], [1])], load=2.5)))
    assert line is not None and "load 2.50 above the 2 CPUs" in line


def test_batch_medians_apart_by_more_than_the_limit_are_named() -> None:
    jumpy = [1000.0, 1000.0, 1000.0 * (1 + SPREAD_LIMIT) + 1]
    assert batch_spread(_result(jumpy, [0], [1])) > SPREAD_LIMIT  # type: ignore[operator]
    line = warning_line(assess(_run([_result(jumpy, [0], [1])])))
    assert line is not None and "more than 10% in 1 case(s)" in line and "pipe/process" in line
    just_under = [1000.0, 1000.0, 1000.0 * (1 + SPREAD_LIMIT) - 1]
    assert warning_line(assess(_run([_result(just_under, [0], [1])]))) is None


def test_an_end_found_on_another_cpu_than_asked_is_named() -> None:
    line = warning_line(assess(_run([_result(STEADY, [0], [0, 1])])))
    assert line is not None and "ran on other CPUs than asked" in line and "peer" in line
    # the daemon is not pinned by the run: its CPU is not judged, the client's still is
    assert warning_line(assess(_run([_result(STEADY, [0], [0], who="daemon")]))) is None
    assert warning_line(assess(_run([_result(STEADY, [1], [1], who="daemon")]))) is not None
