"""``daemonkit compare`` and ``bench --compare``: ratios, their significance, the summary.

The runs are real (short bench runs of this machine); the shifted copies are the same runs'
stored round trips scaled by a known factor, so the verdict expected is known exactly.
"""

from __future__ import annotations

import copy
import json
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemonkit.bench.distribution import decode, encode
from daemonkit.cli import main
from daemonkit.schemas import check_document

QUICK = ["--iterations", "400", "--warmup", "40"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real run: pipe and signal, both peers."""
    path = tmp_path_factory.mktemp("cmp") / "run.json"
    assert main(["bench", "--channels", "pipe,signal", *QUICK, "--json", str(path)]) == 0
    yield path


def _scaled(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """*doc* with every stored round trip (and every percentile) multiplied by *factor*."""
    out = copy.deepcopy(doc)
    for r in out["results"]:
        d = decode(r["latency_hdr"])
        samples = np.repeat(d.values * factor, d.counts).astype(np.int64)
        r["latency_hdr"] = encode(array("q", samples.tobytes()))
        r["latency_ns"] = {k: v * factor for k, v in r["latency_ns"].items()}
    return out


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["compare", *args, "--json", "-"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def test_a_run_against_itself_is_not_significant_anywhere(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, err = _compare(capsys, str(run), str(run))
    assert code == 0
    check_document(doc, "compare output")
    (cmp,) = doc["comparisons"]
    assert len(cmp["cases"]) == 4
    for case in cmp["cases"]:
        for q in ("p50", "p99"):
            assert case[q]["ratio"] == 1 and case[q]["verdict"] == "not significant"
            assert case[q]["low"] <= 1 <= case[q]["high"]
    assert "not significant" in cmp["summary"] and "4 cases" in cmp["summary"]
    assert "beyond ±10%" in err  # the threshold is printed with the verdicts


@pytest.mark.parametrize(("factor", "verdict"), [(1.5, "slower"), (0.5, "faster"), (1.03, None)])
def test_a_known_shift_is_found_in_the_right_direction_and_a_small_one_is_not(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], factor: float, verdict: str
) -> None:
    shifted = _write(tmp_path, "shifted.json", _scaled(json.loads(run.read_text()), factor))
    code, doc, err = _compare(capsys, str(run), str(shifted))
    assert code == 0, err
    (cmp,) = doc["comparisons"]
    for case in cmp["cases"]:
        assert case["p50"]["ratio"] == pytest.approx(factor, rel=0.01)
        assert case["p50"]["verdict"] == (verdict or "not significant")
    word = {"slower": "slower", "faster": "faster", None: "not significant"}[verdict]
    assert word in cmp["summary"]
    if verdict == "slower":
        assert f"{shifted} is 1.50 ± " in cmp["summary"]  # hyperfine's form: "is R ± S"


def _batches(doc: dict[str, Any], spread: float) -> dict[str, Any]:
    """*doc* with each case's batch medians set around its p50: alternately ``1 - spread``
    and ``1 + spread`` times it (``0``: every batch alike)."""
    out = copy.deepcopy(doc)
    for r in out["results"]:
        n, p50 = len(r["batch_p50_ns"]), r["latency_ns"]["p50"]
        r["batch_p50_ns"] = [p50 * (1 + spread * (-1) ** i) for i in range(n)]
    return out


def test_drift_between_batches_widens_the_interval_and_can_make_a_change_not_significant(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The batch is the unit of repetition: a run whose batches disagree says less about its
    percentiles than one whose batches agree, with the same round trips."""
    doc = json.loads(run.read_text())
    assert all(len(r["batch_p50_ns"]) >= 2 for r in doc["results"])
    width: dict[float, list[float]] = {}
    verdicts: dict[float, set[str]] = {}
    for spread in (0.0, 0.3):
        old = _write(tmp_path, f"old-{spread}.json", _batches(doc, spread))
        new = _write(tmp_path, f"new-{spread}.json", _batches(_scaled(doc, 1.2), spread))
        code, out, err = _compare(capsys, str(old), str(new))
        assert code == 0, err
        cases = out["comparisons"][0]["cases"]
        width[spread] = [c["p50"]["high"] - c["p50"]["low"] for c in cases]
        verdicts[spread] = {c["p50"]["verdict"] for c in cases}
    assert all(w30 > 3 * w0 for w0, w30 in zip(width[0.0], width[0.3], strict=True))
    assert verdicts == {0.0: {"slower"}, 0.3: {"not significant"}}


def test_the_terminal_table_fits_80_columns(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shifted = _write(tmp_path, "shifted.json", _scaled(json.loads(run.read_text()), 2.0))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["compare", str(run), str(shifted)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out and "2.00 ±" in out and "slower" in out


def test_runs_of_another_machine_are_refused_unless_forced(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(run.read_text())
    doc["machine"]["hostname"] = "elsewhere"
    other = _write(tmp_path, "other.json", doc)
    assert main(["compare", str(run), str(other)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another machine" in err and "--force" in err
    code, out, _ = _compare(capsys, str(run), str(other), "--force")
    assert code == 0 and any("hostname" in n for n in out["comparisons"][0]["notes"])


def test_a_stored_distribution_that_does_not_decode_or_disagrees_is_one_line_exit_2(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for mutate, words in (
        (lambda r: r.update(latency_hdr="HISTFAAAAnotbase64!"), "not an HdrHistogram"),
        (lambda r: r.update(iterations=r["iterations"] + 1), "holds 400 round trips"),
    ):
        doc = json.loads(run.read_text())
        mutate(doc["results"][1])
        bad = _write(tmp_path, "bad.json", doc)
        assert main(["compare", str(run), str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "results[1].latency_hdr" in err and words in err
        # bench --compare refuses it before measuring anything (no table, no run)
        assert main(["bench", "--channels", "pipe", *QUICK, "--compare", str(bad)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1


def test_runs_with_no_case_in_common_exit_1_with_one_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(run.read_text())
    for r in doc["results"]:
        r["channel"] = "tcp"
    other = _write(tmp_path, "tcp.json", doc)
    assert main(["compare", str(run), str(other)]) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith("nothing was compared: no case was measured in both runs")
    assert main(["compare", str(run)]) == 2
    assert "two runs or more" in capsys.readouterr().err


def test_bench_compare_prints_the_same_comparison_for_the_run_just_measured(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--channels", "pipe", *QUICK, "--compare", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"this run against {run}" in out
    assert "geometric mean of the p50 ratios of 2 cases" in out and "beyond ±10%" in out
