"""The plots of a ``daemonkit.trace/1`` document: one timeline per traced case.

Each timeline is three consecutive round trips the client timed, from the middle of the
traced loop (a dotted line where each began): one lane per CPU, a bar per stretch of time a
task ran there, coloured by who it was (client, peer, another thread of either side, idle,
any other task), and one arrow per wake-up, from the waker's CPU at the instant of
``sched_waking`` to the woken task's CPU at the instant it ran. A turn of an end shorter than
a pixel is drawn a pixel wide, over the others: it stays visible.
Beside it, the per-round-trip figures counted from the whole trace, the getrusage(2) counts
of the same loop, and the findings of the reading with their thresholds.

Like the other plot modules it only reads the document; matplotlib is imported when a plot is
drawn.

*Kernel path*: none (see :mod:`daemonkit.report.figure` for the PNG files).
*Lifetime*: figures are dropped once their PNG bytes exist.
*See also*: :mod:`daemonkit.trace.analysis` for the figures, :mod:`daemonkit.trace.reading`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemonkit.report.figure import Plot, Table, fmt_ns, new_figure, render_png

__all__ = ["ROLE_COLOR", "TEXT", "trace_plots"]

Doc = dict[str, Any]
ROLE_COLOR = {
    "client": "tab:blue",
    "peer": "tab:orange",
    "thread": "tab:green",
    "idle": "#eeeeee",
    "other": "0.55",  # grey: not the story, but its share of the lane is
}
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "section": "Scheduler trace",
        "lead": "The scheduler's own events (sched_switch, sched_waking, sched_wakeup, futex "
        "waits), recorded with perf around {n} round trips per case; {date}.",
        "reading": "Reading",
        "title": "{channel}, {peer} peer, cpu {cpu}: round trips {first}–{last} of {n}",
        "atypical": " (none near {k} × p50: the nearest)",
        "caption": "One lane per CPU; bars show who ran (client, peer, another thread of "
        "either side, idle, other tasks); each arrow goes from a wake-up (sched_waking, on "
        "the waker's CPU) to the moment the woken task ran.",
        "axis": "time (µs) from the start of the first round trip shown (the client's clock)",
        "figure": "per round trip",
        "value": "value",
        "client": "client",
        "peer": "peer",
        "thread": "other thread",
        "idle": "idle",
        "other": "other task",
        "failed": "Cases not traced",
    },
    "zh": {
        "section": "调度器跟踪",
        "lead": "调度器自身的事件（sched_switch、sched_waking、sched_wakeup、futex 等待），"
        "由 perf 在每个用例的 {n} 次往返期间记录；{date}。",
        "reading": "解读",
        "title": "{channel}，{peer} 对端，cpu {cpu}：第 {first}–{last} 次往返（共 {n} 次）",
        "atypical": "（没有接近 {k} 倍 p50 的连续往返：取最接近的）",
        "caption": "每个 CPU 一条泳道；色条表示谁在运行（客户端、对端、任一方的其他线程、"
        "空闲、其他任务）；每个箭头从一次唤醒（sched_waking，在唤醒者的 CPU 上）"
        "指向被唤醒任务开始运行的时刻。",
        "axis": "时间（µs），从所示第一次往返开始算起（客户端的时钟）",
        "figure": "每次往返",
        "value": "数值",
        "client": "客户端",
        "peer": "对端",
        "thread": "其他线程",
        "idle": "空闲",
        "other": "其他任务",
        "failed": "未能跟踪的用例",
    },
}


def _figures(case: Doc) -> Table:
    sw = case["switches_per_round_trip"]
    w = case["wakeups"]
    ct = case["cpu_time"]
    fs = case["futex_sleeps_per_round_trip"]
    rows = [
        [
            "round trip p50 / p99",
            f"{fmt_ns(case['latency_ns']['p50_ns'])} / {fmt_ns(case['latency_ns']['p99_ns'])}",
        ],
        [
            "switches, trace (client + peer)",
            f"{sw['trace']['client']['total']:.2f} + {sw['trace']['peer']['total']:.2f}",
        ],
        [
            "switches, getrusage (client + peer)",
            f"{sw['getrusage']['client']['total']:.2f} + {sw['getrusage']['peer']['total']:.2f}",
        ],
        ["trace vs getrusage (allowed 10 %)", f"{100 * sw['agreement']['difference']:.1f} %"],
        ["wake-ups", f"{w['all']['per_round_trip']:.2f}"],
        [
            "wake-up latency p50 / p99",
            f"{fmt_ns(w['all']['p50_ns'] or 0)} / {fmt_ns(w['all']['p99_ns'] or 0)}",
        ],
        [
            "run time client / peer",
            f"{fmt_ns(ct['run_ns_per_round_trip']['client'])} / "
            f"{fmt_ns(ct['run_ns_per_round_trip']['peer'])}",
        ],
        [
            "CPU idle",
            ", ".join(f"cpu{k} {fmt_ns(v)}" for k, v in ct["idle_ns_per_round_trip"].items()),
        ],
        ["other tasks", fmt_ns(ct["run_ns_per_round_trip"]["other"])],
        ["sleeps on a lock: all / the GIL", f"{fs['total']:.2f} / {fs['gil']:.2f}"],
    ]
    return Table(["figure", "value"], rows)


_ENDS = ("client", "peer", "thread")


def _is_end(segment: list[Any]) -> bool:
    return segment[2] in _ENDS


def _title(case: Doc, T: Mapping[str, str]) -> str:
    tl = case["timeline"]
    k, first = tl["round_trips"], tl.get("first", 0)
    title = T["title"].format(
        channel=case["channel"],
        peer=case["peer"],
        cpu=case["cpu"],
        first=first + 1,
        last=first + k,
        n=case["round_trips"],
    )
    return title if tl.get("typical", True) else title + T["atypical"].format(k=k)


def timeline_plot(case: Doc, T: Mapping[str, str], foot: str, font: str | None, i: int) -> Plot:
    """The lanes and wake-up arrows of one case."""
    tl = case["timeline"]
    cpus = sorted(tl["lanes"], key=int)
    y = {cpu: n for n, cpu in enumerate(cpus)}
    pixel_us = tl["span_ns"] / 1e3 / 800  # about one pixel of the axis
    with new_figure(9.0, 1.5 + 0.75 * len(cpus), font) as fig:
        ax = fig.subplots()
        for cpu in cpus:
            # Other tasks and idle first, then the ends over them, at least a pixel wide.
            for start, end, role, _tid, _comm in sorted(tl["lanes"][cpu], key=_is_end):
                end_role = _is_end([start, end, role])
                ax.broken_barh(
                    [(start / 1e3, max(pixel_us if end_role else 0, (end - start) / 1e3))],
                    (y[cpu] - 0.3, 0.6),
                    facecolors=ROLE_COLOR[role],
                    edgecolor="white",
                    linewidth=0 if end_role else 0.4,
                )
        for ts in tl.get("starts_ns", []):
            ax.axvline(ts / 1e3, color="black", linestyle=":", linewidth=0.8)
        for w in tl["wakeups"]:
            if str(w["cpu"]) not in y or str(w["target_cpu"]) not in y:
                continue
            ran = w["ran_ts"] if w["ran_ts"] is not None else w["ts"]
            y0, y1 = y[str(w["cpu"])], y[str(w["target_cpu"])]
            start = (w["ts"] / 1e3, y0 + (0.45 if y0 == y1 else 0.0))
            ax.annotate(
                "",
                xy=(ran / 1e3, y1 + (0.3 if y0 == y1 else 0.0)),
                xytext=start,
                arrowprops={
                    "arrowstyle": "->",
                    "color": "black",
                    "lw": 0.9,
                    "connectionstyle": "arc3,rad=-0.2",
                },
            )
        ax.set_yticks(range(len(cpus)), [f"cpu{c}" for c in cpus])
        ax.set_ylim(len(cpus) - 0.45, -0.65)  # cpu0 on top
        ax.set_xlim(0, tl["span_ns"] / 1e3)
        ax.set_xlabel(T["axis"])
        ax.grid(axis="y", visible=False)
        for role, color in ROLE_COLOR.items():
            ax.bar(0, 0, color=color, label=T[role])
        fig.legend(loc="outside lower center", ncols=len(ROLE_COLOR), frameon=False, fontsize=8)
        title = _title(case, T)
        ax.set_title(title, loc="left")
        png, w_px, h_px = render_png(fig, foot)
    key = f"trace-{i + 1}-{case['channel']}-{case['peer']}-{case['cpu']}"
    return Plot(key, title, T["caption"], png, w_px, h_px, _figures(case))


def trace_plots(doc: Doc, lang: str, foot: str, font: str | None) -> list[Plot]:
    """One timeline per traced case of *doc*, in the document's order."""
    T = TEXT.get(lang, TEXT["en"]) if font is not None or lang == "en" else TEXT["en"]
    cases = [c for c in doc["cases"] if "timeline" in c]
    return [timeline_plot(c, T, foot, font, i) for i, c in enumerate(cases)]
