"""``daemonkit lessons [NAME ...] [--quick] [--json PATH] [--lang en|zh]``.

Runs the experiments of the study note's claims one after another in this process, prints
each lesson's claim, method, tables and verdicts as it finishes, and optionally writes the
versioned JSON document. The progress bar is redrawn only when a lesson reports a step
(``auto_refresh=False``): a refresh *thread* would be running while the lessons fork, and a
thread that holds a lock at fork time leaves that lock held forever in the child.

A lesson that cannot run (a :class:`~daemonkit.errors.DaemonkitError`) is reported and the
others still run; the exit code is then 1. Ctrl-C stops everything: the lessons' ``finally``
blocks remove what they made, and the CLI exits 130.

Kernel path: none of its own (each lesson's docstring has its). Lifetime: the lessons run one
at a time; each has released everything before the next starts.
See also: :mod:`daemonkit.lessons.report` (the JSON schema), ``daemonkit report`` (plots).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemonkit.commands.options import add_report_option, nearest, prepare_out_dir
from daemonkit.errors import DaemonkitError, UsageError
from daemonkit.lessons.base import LESSONS, load

if TYPE_CHECKING:
    from rich.console import Console

    from daemonkit.lessons.base import Lesson
    from daemonkit.lessons.report import LessonResult

__all__ = ["LESSONS", "load", "register"]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "lessons",
        help="test each claim of the study note on this machine, with verdicts",
        description="Run the experiments behind the claims of the note (processes vs "
        "threads, context switches, IPC, daemons) and print a verdict computed from the "
        f"measurements. Lessons: {', '.join(LESSONS)}.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="lessons to run (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer points: everything in <= 60 s")
    p.add_argument(
        "--json", type=Path, metavar="PATH", help="write the results as JSON ('-': stdout)"
    )
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="report language")
    add_report_option(p)
    p.set_defaults(func=cmd_lessons)


def cmd_lessons(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from daemonkit.bench.views import console as make_console
    from daemonkit.lessons.report import LessonResult, to_json, write_json
    from daemonkit.lessons.text import translator
    from daemonkit.lessons.verdict import Verdict
    from daemonkit.machine import describe

    unknown = [n for n in args.names if n not in LESSONS]
    if unknown:
        guess = nearest(unknown[0], LESSONS)
        raise UsageError(f"unknown lesson {unknown[0]!r}{guess} (known: {', '.join(LESSONS)})")
    names = list(dict.fromkeys(args.names)) or list(LESSONS)
    if args.json is not None and str(args.json) != "-":
        from daemonkit.bench.results import check_writable

        check_writable(args.json)  # found out now, not after minutes of measuring
    if args.report is not None:
        prepare_out_dir(args.report)
    tr = translator(args.lang)
    # The JSON on stdout must stay parseable: the report then goes to stderr.
    console = make_console(stderr=str(args.json) == "-")
    results: list[LessonResult] = []
    failed = False
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        auto_refresh=False,  # no refresh thread while the lessons fork
        transient=True,
    )
    lessons = [load(name) for name in names]
    machine = describe()  # read once, before any lesson loads the machine
    facts = machine["facts"]
    with progress:
        total = sum(lesson.steps(args.quick) for lesson in lessons)
        task = progress.add_task(tr("ui.running", name=names[0]), total=total)
        done = 0

        def tick(key: str) -> None:
            progress.update(task, description=tr(key), advance=1)
            progress.refresh()

        for name, lesson in zip(names, lessons, strict=True):
            progress.update(task, description=tr("ui.running", name=name))
            progress.refresh()
            t0 = time.monotonic()
            try:
                m = lesson.run(args.quick, tick)
                verdicts = lesson.verdicts(m, facts)
            except DaemonkitError as exc:
                failed = True
                m = {"error": str(exc)}
                msg = {"msg": str(exc)}
                verdicts = [
                    Verdict(c, "inconclusive", "ui.failed", "ui.no_threshold", msg)
                    for c in lesson.CLAIMS
                ]
            result = LessonResult(name, lesson.CLAIMS, m, verdicts, time.monotonic() - t0)
            results.append(result)
            _print(progress.console, result, lesson, args.lang)
            done += lesson.steps(args.quick)
            progress.update(task, completed=done)  # a lesson that failed early still counts
            progress.refresh()
    doc = to_json(results, args.lang, args.quick, machine)
    if args.json is not None:
        write_json(args.json, doc)
        if str(args.json) != "-":
            console.print(tr("ui.json", path=args.json))
    if args.report is not None:
        from daemonkit.report import write_report

        page = write_report([doc], args.report, lang=args.lang)
        console.print(f"report: {page}", markup=False)
    return 1 if failed else 0


def _print(console: Console, result: LessonResult, lesson: Lesson, lang: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table as RichTable

    from daemonkit.lessons.render import render_verdict
    from daemonkit.lessons.text import translator

    tr = translator(lang)
    console.rule(f"[bold]{result.name}[/] ({', '.join(result.claims)})")
    console.print(f"[bold]{tr('ui.claim')}:[/] {escape(tr('claim.' + result.name))}")
    console.print(f"[bold]{tr('ui.method')}:[/] {escape(tr('method.' + result.name))}")
    if "error" not in result.measurements:
        for t in lesson.tables(result.measurements, tr):
            # As bench's tables: no vertical rules, and a cell too long for its column
            # folds onto the next line, never cut ("…") at 80 columns.
            rt = RichTable(
                title=escape(tr(t.title)),
                title_justify="left",
                box=box.SIMPLE_HEAD,
                show_edge=False,
                padding=(0, 1, 0, 0),
            )
            heads = [tr(c) for c in t.columns]
            fitted = _column_widths([heads, *t.rows], console.width)
            widths: list[int | None] = list(fitted) if fitted else [None] * len(heads)
            for head, width in zip(heads, widths, strict=True):
                rt.add_column(escape(head), overflow="fold", width=width)
            for row in t.rows:
                rt.add_row(*(escape(cell) for cell in row))
            console.print(rt)
    style = {"holds": "green", "partly holds": "yellow", "does not hold": "red"}
    for v in result.verdicts:
        r = render_verdict(v.as_json(), lang)
        head = tr("ui.verdict", claim=r["claim"], label=r["label_text"])
        gap = "" if lang == "zh" else " "  # Chinese: no space after "。"
        console.print(
            f"[bold {style.get(v.label, 'magenta')}]{escape(head)}[/]{gap}{escape(r['text'])}"
        )
        if r["interval"]:
            console.print(f"  {escape(r['interval'])}")
        console.print(f"  [dim]{escape(tr('ui.threshold', text=r['threshold']))}[/]")
        if r["why"]:
            console.print(f"  [italic]{escape(tr('ui.why', text=r['why']))}[/]")
    console.print(f"[dim]{escape(tr('ui.seconds', name=result.name, s=result.seconds))}[/]")


def _column_widths(rows: list[Sequence[str]], width: int) -> list[int] | None:
    """Column widths that fit *width* (None when every cell and heading fits on one line;
    *rows* begins with the headings). Where the cells fit, headings take two lines or more
    (as bench's do); where they do not, each column first gets its longest word (at most an
    equal share of *width* when not all fit), for as many columns as fit (shortest words
    first: figures before labels; any other column gets 4), then what is left is shared out
    in proportion to what each column still lacks. A longer word folds; nothing is cut."""
    from rich.cells import cell_len

    n = len(rows[0])
    cells = [[str(row[i]) for row in rows] for i in range(n)]

    def lines(col: list[str]) -> int:
        return max((cell_len(line) for c in col for line in c.splitlines()), default=1)

    def words(col: list[str]) -> int:
        return max((cell_len(w) for c in col for w in c.split()), default=1)

    full = [lines(col) for col in cells]
    natural = [max(words(col[:1]), lines(col[1:])) for col in cells]  # a heading may wrap
    room = width - 2 * n  # each column: a space of padding and a space of rule
    if sum(full) <= room:
        return None
    if sum(natural) <= room:
        return _share(natural, full, room)
    word = [words(col) for col in cells]
    if sum(word) > room:  # not every word fits whole: none takes more than a fair share
        word = [min(w, max(4, room // n)) for w in word]
    out = [min(4, w) for w in word]
    spare = room - sum(out)
    for i in sorted(range(n), key=lambda i: word[i]):
        if word[i] - out[i] > spare:
            break
        spare -= word[i] - out[i]
        out[i] = word[i]
    return _share(out, natural, room)


def _share(start: list[int], target: list[int], room: int) -> list[int]:
    """*start* widened towards *target* by what *room* leaves, in proportion to the lack."""
    spare = room - sum(start)
    lack = [max(0, t - s) for s, t in zip(start, target, strict=True)]
    total = sum(lack)
    if spare <= 0 or total == 0:
        return start
    shares = [min(x, spare * x // total) for x in lack]
    for i in sorted(range(len(lack)), key=lambda i: -lack[i])[: spare - sum(shares)]:
        shares[i] += 1 if shares[i] < lack[i] else 0  # what the rounding down left over
    return [w + x for w, x in zip(start, shares, strict=True)]
