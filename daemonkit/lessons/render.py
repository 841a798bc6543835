"""Verdicts into sentences, in the reader's language, at the moment they are shown.

A lessons document (``daemonkit.lessons/2``) stores each verdict as keys and figures
(:meth:`daemonkit.lessons.verdict.Verdict.as_json`); the terminal, ``--lang`` and
``daemonkit report --lang zh`` all call :func:`render_verdict`, so an English run reads in
Chinese and the other way round. Lists among the figures are joined here, with ", " in
English and "、" in Chinese, and a ``[label, value]`` item is written "label: value" or
"label：value"; an interval and its bands are printed beside every label they decide.

Kernel path: none. Lifetime: none.
See also: :mod:`daemonkit.lessons.text` (the string tables).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemonkit.lessons.text import fmt_ns, tr

__all__ = ["fmt_quantity", "localize_lesson", "render_verdict"]

_SEP = {"en": ", ", "zh": "、"}
_PAIR = {"en": ": ", "zh": "："}  # a list item [label, value]: "0 B: 1.44", "0 B：1.44"
_SENTENCE_GAP = {"en": " ", "zh": ""}  # Chinese sentences end in "。" and need no space


def fmt_quantity(x: float | None, unit: str) -> str:
    """A deciding quantity as printed: a ratio with ×, or a duration."""
    if x is None or x != x:  # NaN: undefined in some resample
        return "n/a"
    if unit == "ns":
        return fmt_ns(x)
    return f"{x:.2f}×"


def _figures(figures: Mapping[str, Any], lang: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in figures.items():
        if isinstance(v, list):
            v = _SEP[lang].join(_item(x, lang) for x in v) or "-"
        out[k] = v
    return out


def _item(x: object, lang: str) -> str:
    return _PAIR[lang].join(map(str, x)) if isinstance(x, list) else str(x)


def _decision_lines(d: Mapping[str, Any], lang: str) -> tuple[str, str]:
    """The interval sentence and the bands sentence of one decision."""
    b, ci = d["bands"], d["interval"]
    unit = b["unit"]
    q = tr(lang, "q." + d["quantity"])
    interval = tr(
        lang,
        "ui.interval.at" if d.get("where") else "ui.interval",
        where=_SEP[lang].join(d.get("where") or ()),
        label=tr(lang, "label." + d["label"]),
        quantity=q,
        point=fmt_quantity(ci["point"], unit),
        lo=fmt_quantity(ci["lo"], unit),
        hi=fmt_quantity(ci["hi"], unit),
        n=ci["n"],
        level=round(ci["level"] * 100),
    )
    if d.get("straddles") is not None or d["label"] == "inconclusive":
        where = d.get("straddles")
        key = "ui.straddles" if where is not None else "ui.undefined"
        interval += _SENTENCE_GAP[lang] + tr(lang, key, b=fmt_quantity(where, unit))
    partly, holds = fmt_quantity(b["partly"], unit), fmt_quantity(b["holds"], unit)
    bands = tr(
        lang,
        "ui.bands.binary" if b["partly"] == b["holds"] else "ui.bands",
        quantity=q,
        partly=partly,
        holds=holds,
    )
    return interval, bands


def render_verdict(v: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """One stored verdict as sentences: label, text, threshold (with bands), why, interval."""
    figures = _figures(v.get("figures") or {}, lang)
    gap = _SENTENCE_GAP[lang]
    text = gap.join(tr(lang, k, **figures) for k in (v["text"], *v.get("extra", ())))
    threshold = tr(lang, v["threshold"], **figures)
    lines = [_decision_lines(d, lang) for d in v.get("decisions") or ()]
    interval = gap.join(line for line, _ in lines)
    if lines:  # one claim's decisions share its bands
        threshold += tr(lang, "ui.then") + lines[0][1]
    return {
        "claim": v["claim"],
        "label": v["label"],
        "label_text": tr(lang, "label." + v["label"]),
        "text": text,
        "interval": interval,
        "threshold": threshold,
        "why": gap.join(tr(lang, k, **figures) for k in v.get("why", ())),
    }


def localize_lesson(lesson: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A stored lesson with its claim, method and verdict sentences rendered in *lang*."""
    name = str(lesson["name"])
    rendered = [render_verdict(v, lang) for v in lesson["verdicts"]]
    for r in rendered:
        # The report prints one text per verdict: the interval and the why go with it.
        why = tr(lang, "ui.why", text=r["why"]) if r["why"] else ""
        r["text"] = _SENTENCE_GAP[lang].join(x for x in (r["text"], r["interval"], why) if x)
    return {
        **lesson,
        "claim": tr(lang, f"claim.{name}"),
        "method": tr(lang, f"method.{name}"),
        "verdicts": rendered,
        "verdict": rendered[0],
    }
