"""The verdict engine, the rendering of stored verdicts, and the string tables behind them.

Pure functions on synthetic numbers: intervals on both sides of every band boundary and
straddling one, the combination rule, and a document written in English read back in Chinese.
"""

from __future__ import annotations

import json
import math
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemonkit.lessons import semaphore_vs_signal
from daemonkit.lessons.render import localize_lesson, render_verdict
from daemonkit.lessons.report import LessonResult, to_json
from daemonkit.lessons.text import FRAME, LANGS, strings
from daemonkit.lessons.verdict import (
    Bands,
    Decision,
    Interval,
    bootstrap,
    by_checks,
    combine,
    decide,
    paired_ratio,
    ratio_of_medians,
)
from daemonkit.machine import describe

FAR = Bands(partly=1.25, holds=2.0)


def _reps(median: float, rel: float = 0.01, n: int = 7) -> list[float]:
    """*n* repeats spread evenly, +-rel*3 around *median*."""
    return [median * (1 + rel * (i - n // 2)) for i in range(n)]


# -- bands and decide --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "label"),
    [
        (2.0, 2.3, "holds"),  # on the boundary counts as inside the upper band
        (1.99, 2.3, "inconclusive"),  # straddles 2.0
        (1.3, 1.99, "partly holds"),
        (1.25, 1.9, "partly holds"),
        (1.24, 1.9, "inconclusive"),  # straddles 1.25
        (0.5, 1.24, "does not hold"),
        (1.0, 2.5, "inconclusive"),  # straddles both
        (float("nan"), float("nan"), "inconclusive"),  # undefined in some resample
    ],
)
def test_decide_on_both_sides_of_every_boundary(lo: float, hi: float, label: str) -> None:
    assert decide(Interval((lo + hi) / 2, lo, hi, 7), FAR) == label


def test_bands_refuse_an_upper_boundary_below_the_lower() -> None:
    with pytest.raises(ValueError):
        Bands(partly=2.0, holds=1.0)


def test_a_straddling_decision_names_its_boundary() -> None:
    d = Decision("c2", Interval(1.3, 1.2, 1.4, 7), FAR, ("W = 0 B",))
    assert d.label == "inconclusive" and d.straddles == 1.25
    assert Decision("c2", Interval(1.5, 1.4, 1.6, 7), FAR).straddles is None
    assert d.as_dict()["interval"]["level"] == 0.95


# -- the bootstrap -----------------------------------------------------------------------


def test_ratio_interval_from_tight_repeats_is_tight_and_decides() -> None:
    ci = ratio_of_medians([(_reps(2100), _reps(1000))])
    assert ci.lo <= 2.1 <= ci.hi and ci.hi - ci.lo < 0.2 and ci.n == 7
    assert decide(ci, FAR) == "holds"
    ci = ratio_of_medians([(_reps(1500), _reps(1000))])
    assert decide(ci, FAR) == "partly holds"
    ci = ratio_of_medians([(_reps(1000), _reps(1000))])
    assert decide(ci, FAR) == "does not hold"


def test_noisy_repeats_around_a_boundary_are_inconclusive() -> None:
    ci = ratio_of_medians([(_reps(2000, rel=0.08), _reps(1000))])
    assert ci.lo < 2.0 < ci.hi
    assert decide(ci, FAR) == "inconclusive"


def test_the_interval_is_a_function_of_the_measurements() -> None:
    groups = [(_reps(1700, rel=0.05), _reps(1000, rel=0.05))]
    assert ratio_of_medians(groups) == ratio_of_medians(groups)


def test_a_non_positive_median_makes_the_ratio_undefined() -> None:
    ci = ratio_of_medians([([-5.0, -4.0, 3.0], _reps(1000, n=3))])
    assert math.isnan(ci.lo) and decide(ci, FAR) == "inconclusive"


def test_paired_repeats_cancel_a_burst_that_slows_both_halves() -> None:
    # Each repeat ran thread and process back to back; a burst of load slows both by 1.0-1.6x.
    load = [1.0, 1.6, 1.1, 1.5, 1.2, 1.4, 1.3]
    thread = [1000 * f for f in load]
    process = [1500 * f for f in load]
    paired = paired_ratio([(process, thread)])
    assert paired.lo == pytest.approx(1.5) and paired.hi == pytest.approx(1.5)
    assert decide(paired, FAR) == "partly holds"
    unpaired = ratio_of_medians([(process, thread)])
    assert unpaired.hi - unpaired.lo > 0.2  # the same repeats, resampled apart: much wider
    with pytest.raises(ValueError):
        paired_ratio([(process, thread[:-1])])


def test_geometric_mean_over_points() -> None:
    ci = ratio_of_medians([(_reps(4000), _reps(1000)), (_reps(1000), _reps(1000))])
    assert 1.9 < ci.point < 2.1  # sqrt(4 * 1)


def test_bootstrap_needs_measurements() -> None:
    with pytest.raises(ValueError):
        bootstrap([[]], lambda a: a[:, 0])


# -- folding and yes/no claims -----------------------------------------------------------


def test_combine() -> None:
    assert combine(["holds", "holds"]) == "holds"
    assert combine(["holds", "does not hold"]) == "partly holds"
    assert combine(["holds", "inconclusive"]) == "inconclusive"
    assert combine([]) == "inconclusive"


def test_by_checks() -> None:
    assert by_checks({"a": True, "b": True}) == "holds"
    assert by_checks({"a": True, "b": False}) == "partly holds"
    assert by_checks({"a": False, "b": True}, essential=("a",)) == "does not hold"
    assert by_checks({"a": False, "b": False}) == "does not hold"


# -- the string tables -------------------------------------------------------------------


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_en_and_zh_have_the_same_keys_and_placeholders() -> None:
    en, zh = strings("en"), strings("zh")
    assert set(en) == set(zh) and set(LANGS) == set(FRAME)
    for key in en:
        assert _fields(en[key]) == _fields(zh[key]), key
        assert zh[key].strip(), key


def test_chinese_text_uses_full_width_punctuation() -> None:
    for key, text in strings("zh").items():
        # After a Chinese character comes "，" "；" "：", never their ASCII forms.
        for i, c in enumerate(text[:-1]):
            if "\u4e00" <= c <= "\u9fff":
                assert text[i + 1] not in ",;:", (key, text)
        assert "次次" not in text, key  # the measure word doubled: "256 次次缺页"


# -- rendering at display time -----------------------------------------------------------


def _c5_doc() -> dict[str, Any]:
    m = {
        "k": 1000,
        "sem_posts": 1000,
        "sem_waits": 1000,
        "standard_sent": 1000,
        "standard_delivered": 1,
        "standard_values": [0],
        "realtime_sent": 1000,
        "realtime_delivered": 1000,
        "realtime_in_order": True,
        "realtime_values_head": [0, 1, 2],
        "handoff_rtt_ns": {
            "semaphore": {"median": 2000.0, "samples": _reps(2000)},
            "signal": {"median": 3400.0, "samples": _reps(3400)},
        },
        "mutex": {
            "workers": 4,
            "increments": 10,
            "total": 40,
            "lost_unlocked": 3,
            "lost_locked": 0,
        },
    }
    vs = semaphore_vs_signal.verdicts(m, {})
    result = LessonResult("semaphore-vs-signal", ("C5",), m, vs, 0.1)
    return to_json([result], "en", quick=True, machine=describe())


def test_the_document_stores_keys_and_figures_not_sentences() -> None:
    doc = _c5_doc()
    assert doc["schema"] == "daemonkit.lessons/2"
    v = doc["lessons"][0]["verdicts"][0]
    assert v["text"] == "verdict.semaphore-vs-signal" and v["label"] == "holds"
    assert "label_text" not in v and "claim" not in doc["lessons"][0]
    json.loads(json.dumps(doc))


def test_an_english_run_renders_in_chinese() -> None:
    v = _c5_doc()["lessons"][0]["verdicts"][0]
    zh, en = render_verdict(v, "zh"), render_verdict(v, "en")
    assert zh["label_text"] == "成立" and en["label_text"] == "holds"
    assert "次 sem_post 对应 1000 次成功等待" in zh["text"]
    assert "标准信号在挂起集合中只占一位" in zh["why"]
    lesson = localize_lesson(_c5_doc()["lessons"][0], "zh")
    assert lesson["claim"].startswith("C5（信号量") and lesson["verdict"]["label_text"] == "成立"


def test_lists_are_joined_in_each_language() -> None:
    v = {
        "claim": "C1",
        "label": "partly holds",
        "text": "verdict.failed",
        "threshold": "ui.no_threshold",
        "figures": {"failed": ["a", "b"]},
    }
    assert render_verdict(v, "en")["text"] == "Not as predicted: a, b."
    assert render_verdict(v, "zh")["text"] == "与预期不符的项：a、b。"


def test_an_inconclusive_decision_prints_its_interval_and_boundary() -> None:
    d = Decision("c2", Interval(1.3, 1.2, 1.4, 7), FAR, ("W = 0 B",))
    v = {
        "claim": "C2",
        "label": d.label,
        "text": "verdict.failed",
        "threshold": "ui.no_threshold",
        "figures": {"failed": []},
        "decisions": [d.as_dict()],
    }
    en, zh = render_verdict(v, "en"), render_verdict(v, "zh")
    assert "1.20× to 1.40×" in en["interval"] and "1.25×" in en["interval"]
    assert "inconclusive on this run" in en["interval"]
    assert "1.20×～1.40×" in zh["interval"] and "跨过了分界 1.25×" in zh["interval"]
    assert ">= 2.00×" in en["threshold"] and "≥ 2.00×" in zh["threshold"]


def test_report_lang_zh_shows_chinese_verdicts_of_an_english_run(tmp_path: Path) -> None:
    path = tmp_path / "lessons.json"
    path.write_text(json.dumps(_c5_doc()))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "daemonkit", "report", str(path), "--lang", "zh", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "次 sem_post 对应 1000 次成功等待" in page
    assert "1000 of 1000 semaphore posts" not in page
