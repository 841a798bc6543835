"""`daemonkit report`: plots and report.html drawn from real bench and lessons runs.

The documents come from the real producers (a tiny `daemonkit bench` run, `daemonkit lessons`
experiments with small parameters); fixtures shaped like them cover what a short run cannot
(an older run to compare, a failed channel, three placements). The checks are about the view:
every number printed beside a plot is the number in the JSON, every image is a real PNG and
the same bytes as the file on disk, the page fetches nothing, both languages cover the same
items, and bad input is one line and a non-zero exit.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import bench_doc, lessons_doc

from daemonkit.errors import DocumentError
from daemonkit.lessons.render import localize_lesson
from daemonkit.report import write_report
from daemonkit.report.figure import cjk_font, fmt_ns
from daemonkit.report.html import VERDICT_CLASSES
from daemonkit.report.lesson_plots import ctx_plot
from daemonkit.report.plots import placement_plot
from daemonkit.report.strings import STRINGS

PIL = pytest.importorskip("PIL.Image", reason="Pillow comes with the plot extra")
DK = [sys.executable, "-m", "daemonkit"]
IMG = re.compile(
    r"<img src='data:image/png;base64,([^']+)' width='(\d+)' height='(\d+)'"
    r"[^>]*data-file='([^']+)'>"
)


def dk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DK, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def real_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: pipe, thread and process peers, three sizes, histograms included."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    r = dk(
        "bench",
        "--channels",
        "pipe",
        "--iterations",
        "200",
        "--warmup",
        "20",
        "--sizes",
        "0,4K,64K",
        "--json",
        str(path),
    )
    assert r.returncode == 0, r.stderr
    return path


@pytest.fixture(scope="module")
def real_lessons() -> dict[str, Any]:
    """Real lesson experiments with small parameters, in the producer's own JSON shape."""
    from daemonkit.lessons import address_space, creation, ctx_switch
    from daemonkit.lessons.report import LessonResult, to_json
    from daemonkit.machine import facts

    def tick(_: str) -> None:
        pass

    runs = [
        (ctx_switch, ctx_switch.run(True, tick, ws=(0, 1 << 20), reps=2, batch_s=0.01)),
        (creation, creation.run(True, tick, n=3, big=64 << 20)),
        (address_space, address_space.run(True, tick)),
    ]
    results = [
        LessonResult(m.NAME, tuple(m.CLAIMS), meas, m.verdicts(meas, facts()), 0.0)
        for m, meas in runs
    ]
    return to_json(results, "en", True)


def images(page: str) -> list[tuple[bytes, int, int, str]]:
    return [(base64.b64decode(b), int(w), int(h), f) for b, w, h, f in IMG.findall(page)]


def section(page: str, anchor: str) -> str:
    start = page.index(f"id='{anchor}'")
    end = page.find("<section", start)
    return page[start : end if end > 0 else len(page)]


def test_report_of_a_real_bench_run(real_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = dk("report", str(real_bench), "--out", str(out))
    assert r.returncode == 0, r.stderr
    page_path = Path(r.stdout.strip())
    assert page_path == out / "report.html" and page_path.is_file()
    page = page_path.read_text(encoding="utf-8")
    imgs = images(page)
    assert len(imgs) == 3  # summary, percentiles, size sweep; one placement: no placement plot
    assert imgs[0][3] == "plots/latency-summary.png"  # the answer comes first
    for png, width, height, file in imgs:
        assert (out / file).read_bytes() == png  # the page embeds exactly the file on disk
        with PIL.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.size == (2 * width, 2 * height)
    # Nothing to fetch: no URL anywhere in an attribute, a CSP that forbids fetching.
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    assert "default-src 'none'" in page
    # Every table-of-contents entry points at an element of the page.
    for anchor in re.findall(r"href='#([^']+)'", page):
        assert f"id='{anchor}'" in page
    # The numbers beside the CDF are the run's numbers.
    doc = json.loads(real_bench.read_text())
    summary = section(page, "latency-summary")
    for res in doc["results"]:  # every case is in the summary's table
        assert f"<td>{fmt_ns(res['latency_ns']['p50'])}</td>" in summary
        assert f"<td>{fmt_ns(res['latency_ns']['p99'])}</td>" in summary
    nines = section(page, "latency-nines")
    for res in doc["results"]:
        if res["size"] == 0:
            assert f"<td>{fmt_ns(res['latency_ns']['p99'])}</td>" in nines
    # Figures read as a person writes them: no exponent anywhere on the page.
    assert not re.search(r"\d[eE][+-]\d", re.sub(r"data:image/png;base64,[^'\"]*", "", page))
    # Machine and date of the run are on the page (the plots carry them in their footer).
    assert doc["machine"]["hostname"] in page and doc["created"] in page


def test_lessons_plots_with_their_verdicts_beside_them(
    real_lessons: dict[str, Any], tmp_path: Path
) -> None:
    path = write_report([real_lessons], tmp_path)
    page = path.read_text(encoding="utf-8")
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == ["creation.png", "ctx-switch-curve.png", "ctx-switch-placement.png"]
    # The document stores verdicts as keys and figures: the page shows them as sentences.
    by_name = {x["name"]: localize_lesson(x, "en") for x in real_lessons["lessons"]}
    for key, lesson in (("ctx-switch-curve", "ctx-switch"), ("creation", "creation")):
        beside = section(page, key)  # picture, verdict and table share one row
        for v in by_name[lesson]["verdicts"]:
            cls = next(c for c, words in VERDICT_CLASSES if words in v["label"])
            assert html.escape(STRINGS["en"][f"verdict.{cls}"]) in beside
            assert html.escape(v["threshold"]) in beside
    # Per-switch medians in the table are those of the measurements.
    curve = section(page, "ctx-switch-curve")
    for row in by_name["ctx-switch"]["measurements"]["sweep"]:
        med = row["process"]["switch_ns"]["median"]
        assert fmt_ns(med).split()[0] in curve
    # A lesson without a picture still shows its verdict and its raw measurements.
    plain = section(page, "lesson-address-space")
    assert html.escape(by_name["address-space"]["verdict"]["text"]) in plain
    assert "<details>" in plain and "<table>" in plain


def test_separate_runs_merge_into_placements_and_compare_with_an_older_run(
    tmp_path: Path,
) -> None:
    """Bench runs from one machine merge (one per --cpu placement gives the placement plot);
    failures are listed; an older run is named on the page and drawn in the plots."""
    doc = bench_doc()
    same = {**doc, "results": [r for r in doc["results"] if r["cpu"] == "same"]}
    split = {**doc, "results": [r for r in doc["results"] if r["cpu"] != "same"]}
    old = bench_doc(scale=1.5, date="2026-11-20T06:00:00Z")
    page = write_report([same, split], tmp_path, compare=old).read_text(encoding="utf-8")
    assert len(images(page)) == 4
    place = section(page, "placement")
    for cpu in ("same CPU", "split CPUs", "scheduler"):
        assert f"<th>{cpu}</th>" in place
    assert "posix-mq: /dev/mqueue not mounted" in page
    assert "2026-11-20T06:00:00Z" in page and "different machine" not in page
    # Right after the summary: the ratio table, every case 1/1.5 of the older run's p50.
    ratios = page[page.index("id='ratios'") : page.index("id='latency-nines'")]
    assert page.index("id='latency-summary'") < page.index("id='ratios'")
    assert "p50 new/old" in ratios and "<td>0.67</td>" in ratios
    assert "no distribution stored" in ratios  # these documents keep no round trips


def test_the_older_run_changes_the_pictures_and_another_machine_is_named(
    tmp_path: Path,
) -> None:
    new, old = bench_doc(small=True), bench_doc(scale=1.5, small=True)
    alone = images(write_report([new], tmp_path / "a").read_text())
    both = images(write_report([new], tmp_path / "b", compare=old).read_text())
    assert len(alone) == len(both) == 2  # one size, one placement: summary and percentiles
    assert all(a[0] != b[0] for a, b in zip(alone, both, strict=True))
    old["machine"] = {**old["machine"], "hostname": "elsewhere"}
    assert "different machine" in write_report([new], tmp_path / "c", compare=old).read_text()
    # Lessons: the lat_ctx curve gains the older run's dashed lines.
    lesson = lessons_doc(only=("ctx-switch",))["lessons"][0]
    older = lessons_doc(1.5, only=("ctx-switch",))["lessons"][0]
    plain, compared = (ctx_plot(lesson, o, STRINGS["en"], "footer", None) for o in (None, older))
    assert plain is not None and compared is not None and plain.png != compared.png
    assert plain.table == compared.table  # the numbers beside it are the current run's


def test_chinese_report_covers_the_same_items(real_bench: Path, tmp_path: Path) -> None:
    docs = [json.loads(real_bench.read_text()), lessons_doc(only=("address-space",))]
    en = write_report(docs, tmp_path / "en").read_text(encoding="utf-8")
    zh = write_report(docs, tmp_path / "zh", lang="zh").read_text(encoding="utf-8")
    ids = re.compile(r"id='([^']+)'")
    assert ids.findall(en) == ids.findall(zh)
    assert [f for *_, f in images(en)] == [f for *_, f in images(zh)]
    assert "lang='zh-CN'" in zh and STRINGS["zh"]["sec.bench"] in zh
    assert STRINGS["en"]["sec.bench"] not in zh
    # With a CJK font the plots speak Chinese too; without one they stay English, and say so.
    if cjk_font() is not None:
        assert all(e[0] != z[0] for e, z in zip(images(en), images(zh), strict=True))
        assert STRINGS["zh"]["page.no_cjk"] not in zh
    else:
        assert [e[0] for e in images(en)] == [z[0] for z in images(zh)]
        assert STRINGS["zh"]["page.no_cjk"] in zh


def test_string_tables_have_the_same_keys_and_placeholders() -> None:
    en, zh = STRINGS["en"], STRINGS["zh"]
    assert set(en) == set(zh)
    field = re.compile(r"\{(\w*)\}")
    for key in en:
        assert sorted(field.findall(en[key])) == sorted(field.findall(zh[key])), key


def test_stale_plots_of_an_earlier_report_are_removed(tmp_path: Path) -> None:
    creation = lessons_doc(only=("creation",))
    write_report([bench_doc(small=True), creation], tmp_path)
    assert (tmp_path / "plots" / "d2-creation.png").exists()
    (tmp_path / "plots" / "mine.PNG").write_bytes(b"not ours")
    write_report([creation], tmp_path)
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["creation.png", "mine.PNG"]


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (None, 2, "no such file"),
        ("{not json", 2, "not JSON"),
        ('{"schema": "other/1"}', 2, "(schema 'other/1'"),
        ('{"schema": "daemonkit.bench/1", "results": [{"channel": "pipe"}]}', 2, "is a required"),
        ("[1, 2]", 2, "top level not an object"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, content: str | None, code: int, message: str
) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    r = dk("report", str(path), "--out", str(tmp_path / "out"))
    assert r.returncode == code
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("daemonkit: ")
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "report.html").exists()


def test_usage_errors(tmp_path: Path) -> None:
    r = dk("report", "--out", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = dk("report", "x.json", "--out", str(tmp_path), "--lang", "fr")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    with pytest.raises(DocumentError, match="not a document this command reads"):
        write_report([{"schema": "daemonkit.bench/9", "results": []}], tmp_path)
    # An older run of the other schema has nothing to be drawn against.
    bench, lessons = tmp_path / "bench.json", tmp_path / "lessons.json"
    bench.write_text(json.dumps(bench_doc(small=True)))
    lessons.write_text(json.dumps(lessons_doc(only=("address-space",))))
    r = dk("report", str(bench), "--compare", str(lessons), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "nothing to compare the older lessons document with" in r.stderr


def test_the_cli_does_not_import_matplotlib() -> None:
    code = "import sys, daemonkit.cli as c; c.build_parser(); sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_placements_are_compared_at_one_message_size() -> None:
    """`bench` (same CPU, sizes 0 and 4K) + `bench --cpu split` (4K only): the placement plot
    compares 4K with 4K, never the 0-byte same-CPU run with the 4K split one."""
    doc = bench_doc()
    results = [r for r in doc["results"] if r["channel"] == "pipe" and r["size"] in (0, 4096)]
    results = [r for r in results if r["cpu"] == "same"] + [
        {**r, "cpu": "split", "size": 4096} for r in results if r["cpu"] == "split"
    ]
    plot = placement_plot({**doc, "results": results}, None, STRINGS["en"], "footer", None)
    assert plot is not None
    by_peer = {row[1]: row for row in plot.table.rows}
    for peer in ("thread", "process"):
        same = next(r for r in results if (r["peer"], r["cpu"], r["size"]) == (peer, "same", 4096))
        assert by_peer[peer][2] == "4K"
        assert by_peer[peer][3] == fmt_ns(same["latency_ns"]["p50"])


def _degenerate(case: str) -> dict[str, Any]:
    bench, lessons = bench_doc(small=True), lessons_doc()
    if case == "every run failed":
        failed = {**bench["results"][0], "latency_ns": None, "error": "pipe: peer died"}
        return {**bench, "results": [failed]}
    if case == "no results":
        return {**bench, "results": []}
    if case == "no lessons":
        return {**lessons, "lessons": []}
    # Lessons whose measurements hold nothing to draw.
    return {
        **lessons,
        "lessons": [{**x, "measurements": {}} for x in lessons["lessons"]],
    }


@pytest.mark.parametrize("case", ["every run failed", "no results", "no lessons", "bare lessons"])
def test_documents_with_nothing_to_draw_still_give_a_page(case: str, tmp_path: Path) -> None:
    page = write_report([_degenerate(case)], tmp_path).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    if case in ("every run failed", "no results"):
        assert STRINGS["en"]["bench.nothing"] in page and not images(page)
    if case == "every run failed":
        assert "pipe: peer died" in page
    if case == "bare lessons":
        assert page.count("class='verdict") >= 3  # the verdicts stand without a picture


def test_a_document_without_its_machine_or_date_is_refused(tmp_path: Path) -> None:
    bench = {k: v for k, v in bench_doc(small=True).items() if k not in ("machine", "created")}
    with pytest.raises(DocumentError, match="'created' is a required property"):
        write_report([bench], tmp_path)


def test_a_stream_run_is_drawn_as_messages_per_second(tmp_path: Path) -> None:
    path = tmp_path / "stream.json"
    r = dk("bench", "--mode", "stream", "--channels", "pipe", "--iterations", "300",
           "--warmup", "30", "--json", str(path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = write_report([json.loads(path.read_text())], tmp_path / "out").read_text()
    assert [file for *_, file in images(page)] == ["plots/stream-summary.png"]
    assert STRINGS["en"]["bench.nothing"] not in page
