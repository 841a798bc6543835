"""report.html in a real browser: headless Chromium loads it from disk and screenshots it.

Runs of the browser, each with a fresh profile directory and nothing that phones home:

1. ``--dump-dom`` of a test copy of the page with a small probe in ``<head>``: after the load
   event it writes into ``<body>`` how many images there are, how many did not decode
   (``naturalWidth == 0``), and the errors and security-policy violations it saw (a fetch
   the page's CSP refused would be one). Chromium also logs every console message to stderr
   (``--enable-logging=stderr``): the page has no script of its own, so there must be none.
2. ``--screenshot`` of the page itself at 1280x2000: the picture must not be blank.

The first page draws every kind of plot from small fixture documents; then a report of each
kind of document the tool writes, made by real short runs (bench with local peers,
``--target daemon``, ``--connect``, ``--mode stream``, throughput, trace, lessons), alone and
all mixed, goes through the same probe (one browser launch per page).

Skipped only where /usr/bin/chromium is missing (``.ci/install-system`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from facilities import CHROMIUM, require
from real_documents import write_documents, write_stream, write_trace
from report_fixtures import bench_doc, lessons_doc, throughput_doc

from daemonkit.cli import main
from daemonkit.report import write_report
from daemonkit.report.html import CSP

pytestmark = pytest.mark.needs("chromium")
Image = pytest.importorskip("PIL.Image", reason="Pillow comes with the plot extra")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# Runs before anything else on the page; records what a person would see as breakage.
PROBE = """<script>
var dkErrors = [];
window.addEventListener('error', function (e) {
  var what = e.message || (e.target && (e.target.src || e.target.href)) || '?';
  dkErrors.push('error: ' + String(what).slice(0, 120));
}, true);
document.addEventListener('securitypolicyviolation', function (e) {
  dkErrors.push('csp: ' + e.blockedURI);
});
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var b = document.body;
  b.setAttribute('data-images', imgs.length);
  b.setAttribute('data-broken', imgs.filter(function (i) {
    return !i.complete || i.naturalWidth === 0; }).length);
  b.setAttribute('data-errors', JSON.stringify(dkErrors));
  // The page must fit the window (no sideways scrolling), and lead with the summary.
  b.setAttribute('data-scrollw', document.documentElement.scrollWidth);
  b.setAttribute('data-innerw', window.innerWidth);
  b.setAttribute('data-first', imgs.length ? imgs[0].getAttribute('data-file') : '');
});
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report with every kind of plot: bench (with three placements and an older run to
    compare) and lessons (lat_ctx curve, placement, creation, a lesson without a plot)."""
    out = tmp_path_factory.mktemp("report")
    old = bench_doc(scale=1.4, date="2026-11-20T06:00:00Z")
    return write_report([bench_doc(), lessons_doc(), throughput_doc()], out, compare=old)


def probe(page_path: Path, tmp: Path, width: int = 1280) -> tuple[int, dict[str, str]]:
    """Load a probed copy of the report at *page_path* in Chromium: how many ``<img>`` the
    page has, and what the probe wrote (``images``, ``broken``, ``errors``, ``scrollw``,
    ``innerw``, ``first``); the console must have stayed silent."""
    page = page_path.read_text(encoding="utf-8")
    n_img = page.count("<img ")
    # The probe needs inline script; everything else stays as strict as the report's CSP.
    probed = page.replace(CSP, CSP + "; script-src 'unsafe-inline'", 1)
    assert probed != page
    probed = probed.replace("<head>", "<head>" + PROBE, 1)
    copy = page_path.with_name("probed.html")
    copy.write_text(probed, encoding="utf-8")
    r = chromium(
        tmp,
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        f"--window-size={width},2000",
        "--dump-dom",
        copy.as_uri(),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", r.stdout)
    assert body is not None, r.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == []
    return n_img, attrs


def assert_renders(n_img: int, attrs: dict[str, str], width: int = 1280) -> None:
    """Every image decoded, nothing erred, nothing sticks out sideways."""
    assert int(attrs["images"]) == n_img
    assert attrs["broken"] == "0"
    assert json.loads(attrs["errors"].replace("&quot;", '"')) == []
    assert int(attrs["scrollw"]) <= int(attrs["innerw"]) == width  # nothing sticks out


@pytest.mark.parametrize("width", [1280, 800])
def test_every_image_loads_and_nothing_errs(report: Path, tmp_path: Path, width: int) -> None:
    n_img, attrs = probe(report, tmp_path, width)
    assert n_img >= 7
    assert_renders(n_img, attrs, width)
    assert attrs["first"].endswith("latency-summary.png")  # the answer comes first


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    r = chromium(tmp_path, "--window-size=1280,2000", f"--screenshot={shot}", report.as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    keep = os.environ.get("DAEMONKIT_SCREENSHOT")  # where a developer wants a copy
    if keep:
        shutil.copyfile(shot, keep)
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None
        # A blank or failed page is one or two colours; plots and text give hundreds.
        assert len(colours) > 200
        counts = {c: n for n, c in colours}
        # Plots have white backgrounds, so most of the page is white; a blank one is all.
        assert counts.get((255, 255, 255), 0) < 0.97 * 1280 * 2000
        # The plots reach the first screen: the thread and process colours of matplotlib's
        # palette (tab:blue, tab:orange) are present in quantity.
        assert counts.get((31, 119, 180), 0) > 500 and counts.get((255, 127, 14), 0) > 500


# -- the documents the tool writes, each alone and all together ---------------------------------

KINDS = ["bench", "daemon", "connect", "stream", "throughput", "trace", "lessons"]


@pytest.fixture(scope="module")
def real_docs() -> Iterator[dict[str, Path]]:
    """A real document of every kind (trace only where perf can record)."""
    from daemonkit.trace import perf

    base = Path(tempfile.mkdtemp(prefix="dkbrw.", dir="/tmp"))  # short: AF_UNIX paths
    try:
        write_documents(base, lessons=("address-space", "ctx-switch"))  # ctx-switch has plots
        write_stream(base / "stream.json")
        if perf.missing() is None:
            write_trace(base / "trace.json")
        yield {p.stem: p for p in base.glob("*.json")}
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("kind", [*KINDS, "mixed"])
def test_every_document_kind_alone_and_all_mixed_renders(
    real_docs: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    if kind == "trace" and "trace" not in real_docs:
        from daemonkit.trace import perf

        require("trace", f"cannot record the scheduler's events: {perf.missing()}")
    inputs = list(real_docs.values()) if kind == "mixed" else [real_docs[kind]]
    assert main(["report", *map(str, inputs), "--out", str(tmp_path / "r")]) == 0
    page = tmp_path / "r" / "report.html"
    n_img, attrs = probe(page, tmp_path)
    assert n_img >= (len(inputs) if kind == "mixed" else 1)  # every kind draws something
    assert_renders(n_img, attrs)
    if kind in ("bench", "daemon", "connect", "mixed"):
        assert attrs["first"].endswith("latency-summary.png")  # round trips lead
    if kind == "mixed":
        html = page.read_text(encoding="utf-8")
        for name in ("latency-summary", "stream-summary", "throughput"):
            assert f"{name}.png" in html
