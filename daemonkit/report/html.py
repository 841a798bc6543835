"""``report.html``: one self-contained page with every plot, its numbers and its verdict.

Steps of :func:`write_report`:

* check every document against its schema (bench, throughput, lessons);
* pick the fonts: Chinese text in the plots needs a CJK font, and without one the plots stay in
  English while the page itself is in Chinese (the page says so);
* draw the plots of each document, with the older run of the same schema on the same axes;
* write each PNG under ``DIR/plots/`` and embed the same bytes in the page as ``data:`` URIs, so
  the page opens from disk, can be mailed as one file, and fetches nothing from the network;
* write the page: a table of contents, then per plot the picture beside its table, with the
  lesson's verdict next to the plots that test it.

*Kernel path*: ``mkdir`` and ``open``/``write`` of the output files (written to a temporary
name, then ``rename``: a reader never sees half a page).
*Lifetime*: files on disk, the caller's to remove.
*See also*: RFC 2397 (the data URL scheme).
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemonkit.errors import DaemonkitError, DocumentError, UsageError
from daemonkit.lessons.render import localize_lesson
from daemonkit.report.figure import (
    Plot,
    Table,
    cjk_font,
    fmt_bytes,
    fmt_ns,
    footer_text,
    peer_label,
)
from daemonkit.report.lesson_plots import lesson_plots, measurement_tables
from daemonkit.report.load import (
    check_doc,
    doc_date,
    machine_summary,
    merge_docs,
    same_machine,
    schema_kind,
)
from daemonkit.report.plots import bench_plots, failed_results, ok_results, stream_results
from daemonkit.report.strings import STRINGS, strings
from daemonkit.report.throughput_plots import throughput_plot
from daemonkit.report.trace_plots import TEXT as TRACE_TEXT
from daemonkit.report.trace_plots import trace_plots

__all__ = ["CSP", "VERDICT_CLASSES", "write_report"]

Doc = dict[str, Any]
REPORT_NAME = "report.html"
PLOT_NAME = re.compile(r"(d[0-9]+-)?[a-z0-9-]+\.png")
# Verdict labels of daemonkit.lessons/2, tested in this order: "partly holds" contains "holds".
VERDICT_CLASSES = (
    ("partly", "partly"),
    ("not", "not hold"),
    ("holds", "holds"),
    ("inconclusive", "inconclusive"),
)
# The page may load nothing but its own inline style and data: images: a browser refuses (and
# reports) any fetch, so "self-contained" is enforced, not just intended.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body{font-family:"DejaVu Sans","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;
 margin:16px auto;max-width:1260px;color:#222;line-height:1.45;padding:0 12px}
h1{font-size:1.6em;margin:.2em 0} h2{border-bottom:2px solid #ccc;margin-top:1.6em}
h3{margin:.2em 0 .4em} nav ol{columns:2} .lead{color:#555}
.plot,.lesson{margin:1.2em 0 2em} .row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0;flex:0 1 auto;max-width:100%} img{max-width:100%;height:auto}
figcaption{max-width:780px;font-size:.9em;color:#444}
.side{flex:1 1 320px;min-width:0}
table{border-collapse:collapse;font-size:.8em;margin:.3em 0 1em;max-width:100%}
th,td{border:1px solid #ccc;padding:2px 7px;text-align:right;word-break:keep-all;
 overflow-wrap:break-word} th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
.verdict{border-left:6px solid #999;background:#f7f7f7;padding:6px 10px;margin:0 0 .8em}
.holds{border-color:#2a8a2a} .partly{border-color:#d89a00} .not{border-color:#c0392b}
.inconclusive{border-color:#999}
.label{font-weight:bold} .warn{background:#fff4d6;padding:6px 10px} .muted{color:#666}
footer{margin-top:3em;color:#666;font-size:.85em}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_html(lesson: Mapping[str, Any], S: Mapping[str, str]) -> str:
    """Every verdict of a lesson, each with its label, its sentence and its threshold."""
    verdicts = lesson.get("verdicts") or ([lesson["verdict"]] if lesson.get("verdict") else [])
    if not verdicts:
        return f"<div class='verdict'>{_esc(lesson['name'])}: {_esc(S['verdict.unknown'])}</div>"
    out = []
    for v in verdicts:
        label = str(v.get("label", ""))
        cls = next((c for c, words in VERDICT_CLASSES if words in label), "")
        # The label in the report's language (the lessons may have run in the other one).
        shown = S[f"verdict.{cls}"] if cls else (v.get("label_text") or label)
        claim = f"{v['claim']} " if v.get("claim") else ""
        thr = (
            f"<div class='muted'>{_esc(S['lesson.threshold'])}: {_esc(v['threshold'])}</div>"
            if v.get("threshold")
            else ""
        )
        text = f"<div>{_esc(v['text'])}</div>" if v.get("text") else ""
        out.append(
            f"<div class='verdict {cls}'><span class='label'>{_esc(claim)}"
            f"{_esc(S['lesson.verdict'])}: {_esc(shown)}</span>{text}{thr}</div>"
        )
    return "".join(out)


def _plot_html(plot: Plot, verdict: str, ctx: _Ctx, prefix: str) -> str:
    name = f"{prefix}{plot.key}.png"
    _write_atomic(ctx.out_dir / "plots" / name, plot.png)
    ctx.written.add(name)
    uri = "data:image/png;base64," + base64.b64encode(plot.png).decode("ascii")
    notes = "".join(f"<p class='muted'>{_esc(n)}</p>" for n in plot.notes)
    return (
        f"<section class='plot' id='{prefix}{plot.key}'><h3>{_esc(plot.title)}</h3>"
        f"<div class='row'><figure><img src='{uri}' width='{plot.width_px}' "
        f"height='{plot.height_px}' alt='{_esc(plot.title)}' data-file='plots/{name}'>"
        f"<figcaption>{_esc(plot.caption)}</figcaption></figure>"
        f"<div class='side'>{verdict}{notes}{_table_html(plot.table)}</div></div></section>"
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)  # rename(2): the old file or the new one, never half of either
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DaemonkitError(f"{err.filename or path}: cannot write: {err.strerror}") from err


def _remove_stale_plots(plots: Path, keep: set[str]) -> None:
    """Remove plot files an earlier report left in the same directory (only names we write)."""
    for path in plots.glob("*.png"):
        if path.name not in keep and PLOT_NAME.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _old_of(doc: Doc, compare: Doc | None) -> Doc | None:
    return compare if compare is not None and compare["schema"] == doc["schema"] else None


def _bench_section(doc: Doc, old: Doc | None, ctx: _Ctx, prefix: str) -> str:
    S, foot = ctx.S, footer_text(machine_summary(doc), doc_date(doc))
    timer = doc.get("timer_overhead_ns")
    out = [
        f"<h2 id='{prefix}bench'>{_esc(S['sec.bench'])}</h2>",
        "<p>"
        + _esc(
            S["bench.summary"].format(
                n=len(doc["results"]),
                timer=fmt_ns(timer) if timer is not None else "?",
                date=doc_date(doc),
            )
        )
        + "</p>",
    ]
    ctx.toc.append((0, f"{prefix}bench", S["sec.bench"]))
    for i, plot in enumerate(bench_plots(doc, old, ctx.plot_S, foot, ctx.font)):
        verdict = _verdict_html(ctx.lessons[plot.lesson], S) if plot.lesson in ctx.lessons else ""
        out.append(_plot_html(plot, verdict, ctx, prefix))
        ctx.toc.append((1, f"{prefix}{plot.key}", plot.title))
        if i == 0 and old is not None:  # the answer to "what changed" right after the summary
            out.append(_ratios_html(doc, old, S, prefix))
            ctx.toc.append((1, f"{prefix}ratios", S["cmp.title"]))
    failed = failed_results(doc)
    if failed:
        t = Table(
            [S["col.channel"], S["col.peer"], S["col.size"], S["col.error"]],
            [
                [
                    r["channel"],
                    r["peer"],
                    fmt_bytes(r["size"]),
                    str(r.get("error") or f"{S['col.skipped']}: {r.get('skipped')}"),
                ]
                for r in failed
            ],
        )
        out.append(f"<h3 id='{prefix}failed'>{_esc(S['sec.failed'])}</h3>{_table_html(t)}")
        ctx.toc.append((1, f"{prefix}failed", S["sec.failed"]))
    if not ok_results(doc) and not stream_results(doc):
        out.append(f"<p class='warn'>{_esc(S['bench.nothing'])}</p>")
    out.append(_machine_html(doc, S))
    return "".join(out)


def _ratios_html(doc: Doc, old: Doc, S: Mapping[str, str], prefix: str) -> str:
    """The comparison of ``daemonkit compare`` as a table: per case the p50 and p99 ratios
    new/old, ± the bootstrap's spread, and whether each is significant."""
    from daemonkit.bench.compare import NOISE_MARGIN, compare_runs, speedup
    from daemonkit.bench.results import from_json

    cmp = compare_runs(from_json(old), from_json(doc), doc_date(old), doc_date(doc))
    words = {
        "faster": S["cmp.faster"],
        "slower": S["cmp.slower"],
        "not significant": S["cmp.ns"],
        "no distribution": S["cmp.nodist"],
    }

    def ratio(r: Any) -> str:
        spread = "" if r.sd is None else f" ± {r.sd:.2g}"
        return f"{r.value:.2f}{spread}"

    rows = [
        [c.new.channel, peer_label(S, c.new.peer), fmt_bytes(c.new.size),
         ratio(c.p50), words[c.p50.verdict], ratio(c.p99), words[c.p99.verdict]]
        for c in cmp.cases
    ]  # fmt: skip
    t = Table(
        [S["col.channel"], S["col.peer"], S["col.size"], "p50 new/old", "p50", "p99 new/old",
         "p99"],
        rows,
    )  # fmt: skip
    caption = S["cmp.caption"].format(margin=f"{NOISE_MARGIN:.0%}")
    summary = ""
    if cmp.geomean is not None:
        speed, spread, word = speedup(cmp.geomean)
        summary = S["cmp.summary"].format(
            new=doc_date(doc), old=doc_date(old), ratio=f"{speed}{spread}",
            word=S[f"cmp.{word}"], n=len(cmp.cases),
        )  # fmt: skip
        if cmp.geomean.significant is False:
            summary += " " + S["cmp.summary_ns"]
    notes = "".join(f"<p class='muted'>{_esc(n)}</p>" for n in cmp.notes)
    return (
        f"<section class='plot' id='{prefix}ratios'><h3>{_esc(S['cmp.title'])}</h3>"
        f"<p><b>{_esc(summary)}</b></p><p class='muted'>{_esc(caption)}</p>{notes}"
        f"{_table_html(t)}</section>"
    )


def _machine_html(doc: Doc, S: Mapping[str, str]) -> str:
    """The machine in one line, and every key the producer recorded, folded."""
    m = doc.get("machine")
    line = f"<p class='muted'>{_esc(S['sec.machine'])}: {_esc(machine_summary(doc))}</p>"
    if not isinstance(m, Mapping):
        return line
    rows = [
        [str(k), json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)]
        for k, v in m.items()
    ]
    return line + (
        f"<details><summary>{_esc(S['sec.machine'])}</summary>"
        + _table_html(Table([S["col.key"], S["col.value"]], rows))
        + "</details>"
    )


@contextmanager
def _producer_shaped(where: str) -> Iterator[None]:
    """Draw from a part whose shape the schema leaves to its producer (a lesson's
    measurements, a traced case's figures): a part this version cannot read is an input
    error, one line with exit status 2, not a traceback."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
        reason = f"{type(e).__name__}: {e}"[:160]
        raise DocumentError(f"{where}: not in the shape this version draws ({reason})") from e


def _lessons_section(doc: Doc, old: Doc | None, ctx: _Ctx, prefix: str) -> str:
    S, foot = ctx.S, footer_text(machine_summary(doc), doc_date(doc))
    out = [f"<h2 id='{prefix}lessons'>{_esc(S['sec.lessons'])}</h2>"]
    ctx.toc.append((0, f"{prefix}lessons", S["sec.lessons"]))
    old_by = {x["name"]: x for x in (old or {}).get("lessons", [])}
    for lesson in doc["lessons"]:
        anchor = f"{prefix}lesson-{lesson['name']}"
        ctx.toc.append((1, anchor, str(lesson["name"])))
        out.append(f"<section class='lesson' id='{anchor}'><h3>{_esc(lesson['name'])}</h3>")
        for key, field in (("lesson.claim", "claim"), ("lesson.method", "method")):
            if lesson.get(field):
                out.append(f"<p><b>{_esc(S[key])}:</b> {_esc(lesson[field])}</p>")
        with _producer_shaped(f"{ctx.where(doc)}: lesson {lesson['name']}: measurements"):
            plots = lesson_plots(lesson, old_by.get(lesson["name"]), ctx.plot_S, foot, ctx.font)
        if not plots:
            out.append(_verdict_html(lesson, S))
        for i, plot in enumerate(plots):  # the verdict sits beside the first of its plots
            verdict = _verdict_html(lesson, S) if i == 0 else ""
            out.append(_plot_html(plot, verdict, ctx, prefix))
            ctx.toc.append((2, f"{prefix}{plot.key}", plot.title))
        with _producer_shaped(f"{ctx.where(doc)}: lesson {lesson['name']}: measurements"):
            tables = measurement_tables(lesson.get("measurements"))
        if tables and not plots:  # no picture: the raw measurements, folded
            out.append(f"<details><summary>{_esc(S['lesson.measurements'])}</summary>")
            out += [
                f"<p class='muted'>{_esc(t)}</p>{_table_html(tb)}" if t else _table_html(tb)
                for t, tb in tables
            ]
            out.append("</details>")
        out.append("</section>")
    out.append(_machine_html(doc, S))
    return "".join(out)


def _trace_section(doc: Doc, old: Doc | None, ctx: _Ctx, prefix: str) -> str:
    """A ``daemonkit trace`` run: its reading, then per case the timeline and its figures."""
    T = TRACE_TEXT.get(ctx.lang, TRACE_TEXT["en"])
    anchor = f"{prefix}trace"
    ctx.toc.append((0, anchor, T["section"]))
    n = (doc.get("options") or {}).get("round_trips", "?")
    out = [
        f"<h2 id='{anchor}'>{_esc(T['section'])}</h2>",
        f"<p>{_esc(T['lead'].format(n=n, date=doc_date(doc)))}</p>",
    ]
    if doc.get("reading"):
        out.append(f"<p><b>{_esc(T['reading'])}:</b> {_esc(doc['reading'])}</p>")
    foot = footer_text(machine_summary(doc), doc_date(doc))
    threshold = ctx.S["lesson.threshold"]
    traced = [c for c in doc["cases"] if "timeline" in c]
    with _producer_shaped(f"{ctx.where(doc)}: cases"):
        plots = trace_plots(doc, ctx.lang, foot, ctx.font)
    for case, plot in zip(traced, plots, strict=True):
        name = f"{case['channel']} {case['peer']} {case['cpu']}"
        side = "".join(
            f"<div class='verdict'>{_esc(f['text'])}<div class='muted'>"
            f"{_esc(threshold)}: {_esc(f['threshold'])}</div></div>"
            for f in doc.get("findings", [])
            if f.get("case") == name
        )
        out.append(_plot_html(plot, side, ctx, prefix))
        ctx.toc.append((1, f"{prefix}{plot.key}", plot.title))
    failed = [c for c in doc["cases"] if "timeline" not in c]
    if failed:
        rows = [[c["channel"], c["peer"], str(c.get("error") or c.get("skipped"))] for c in failed]
        t = Table([ctx.S["col.channel"], ctx.S["col.peer"], ctx.S["col.error"]], rows)
        out.append(f"<h3>{_esc(T['failed'])}</h3>{_table_html(t)}")
    out.append(_machine_html(doc, ctx.S))
    return "".join(out)


def _throughput_section(doc: Doc, old: Doc | None, ctx: _Ctx, prefix: str) -> str:
    S, foot = ctx.S, footer_text(machine_summary(doc), doc_date(doc))
    out = [f"<h2 id='{prefix}throughput'>{_esc(S['sec.throughput'])}</h2>"]
    ctx.toc.append((0, f"{prefix}throughput", S["sec.throughput"]))
    plot = throughput_plot(doc, old, ctx.plot_S, foot, ctx.font)
    if plot is not None:
        out.append(_plot_html(plot, "", ctx, prefix))
    failed = [r for r in doc["results"] if "error" in r]
    if failed:
        t = Table(
            [S["col.channel"], S["col.size"], S["col.error"]],
            [[r["channel"], fmt_bytes(r["size"]), r["error"]] for r in failed],
        )
        out.append(f"<h3 id='{prefix}tp-failed'>{_esc(S['sec.failed'])}</h3>{_table_html(t)}")
    out.append(_machine_html(doc, S))
    return "".join(out)


SECTION_ORDER = ("bench", "throughput", "trace", "lessons")
SECTIONS = {
    "bench": _bench_section,
    "lessons": _lessons_section,
    "throughput": _throughput_section,
    "trace": _trace_section,
}


class _Ctx:
    """What every section needs: strings, fonts, the output dir, verdicts, the TOC so far."""

    def __init__(self, lang: str, out_dir: Path, docs: Sequence[Doc]) -> None:
        self.S = strings(lang)
        self.lang = lang
        self.font = cjk_font() if lang == "zh" else None
        # Without a CJK font Chinese glyphs would be drawn as empty boxes: keep plots in English.
        self.plot_S = self.S if lang != "zh" or self.font else STRINGS["en"]
        self.out_dir = out_dir
        self.written: set[str] = set()  # plot files of this report
        self.toc: list[tuple[int, str, str]] = []
        self.lessons = {
            x["name"]: x for d in docs if schema_kind(d) == "lessons" for x in d["lessons"]
        }

    @staticmethod
    def where(doc: Doc) -> str:
        """A document named in an error: its family and when it was recorded."""
        return f"{schema_kind(doc)} document of {doc_date(doc)}"


def _localized(doc: Doc, lang: str) -> Doc:
    if schema_kind(doc) != "lessons":
        return doc
    return {**doc, "lessons": [localize_lesson(x, lang) for x in doc["lessons"]]}


def write_report(
    json_docs: Sequence[Doc], out_dir: Path, lang: str = "en", compare: Doc | None = None
) -> Path:
    """Write ``out_dir/report.html`` (plus ``out_dir/plots/*.png``) and return its path.

    ``json_docs``: bench (``daemonkit.bench/1``) and/or lessons (``daemonkit.lessons/2``)
    documents, as parsed from their JSON. ``lang``: ``"en"`` or ``"zh"``. ``compare``: an older
    document; it is drawn on the same axes as the current document of the same schema.
    Raises :class:`~daemonkit.errors.DocumentError` for a document that does not match and
    :class:`~daemonkit.errors.UsageError` for an unknown language.
    """
    if lang not in STRINGS:
        raise UsageError(f"unknown language {lang!r} (choose from {', '.join(STRINGS)})")
    docs = merge_docs([check_doc(d, f"document {i + 1}") for i, d in enumerate(json_docs)])
    # The answer first: the round trips, then the other measurements, then the lessons.
    docs.sort(key=lambda d: SECTION_ORDER.index(schema_kind(d)))
    # Lessons documents store verdicts as keys and figures: their sentences are written now,
    # in the report's language, whatever language the lessons ran in.
    docs = [_localized(d, lang) for d in docs]
    if not docs:
        raise UsageError("no results documents to report on")
    old = check_doc(compare, "compared document") if compare is not None else None
    if old is not None and not any(_old_of(d, old) for d in docs):
        raise UsageError(f"nothing to compare the older {schema_kind(old)} document with")
    ctx = _Ctx(lang, out_dir, docs)
    S = ctx.S
    bodies = []
    for i, doc in enumerate(docs):
        prefix = f"d{i + 1}-" if len(docs) > 1 else ""
        section = SECTIONS[schema_kind(doc)]
        bodies.append(section(doc, _old_of(doc, old), ctx, prefix))
    head = [f"<h1>{_esc(S['page.title'])}</h1><p class='lead'>{_esc(S['page.lead'])}</p>"]
    if lang == "zh" and ctx.font is None:
        head.append(f"<p class='warn'>{_esc(S['page.no_cjk'])}</p>")
    if old is not None:
        head.append(f"<p>{_esc(S['page.compare'].format(old=doc_date(old)))}</p>")
        if any(not same_machine(old, d) for d in docs if _old_of(d, old)):
            head.append(
                "<p class='warn'>"
                + _esc(S["page.compare_machine"].format(old=machine_summary(old)))
                + "</p>"
            )
    toc = "".join(
        f"<li style='margin-left:{lvl * 1.4}em'><a href='#{a}'>{_esc(t)}</a></li>"
        for lvl, a, t in ctx.toc
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        f"<!DOCTYPE html><html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head>"
        f"<meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>{_esc(S['page.title'])}</title><style>{CSS}</style></head><body>"
        + "".join(head)
        + f"<nav><h2>{_esc(S['page.toc'])}</h2><ul style='list-style:none;padding:0'>{toc}</ul>"
        f"</nav>"
        + "".join(bodies)
        + f"<footer>{_esc(S['page.generated'])}: {now}</footer></body></html>\n"
    )
    _remove_stale_plots(out_dir / "plots", ctx.written)
    path = out_dir / REPORT_NAME
    _write_atomic(path, page.encode("utf-8"))
    return path
