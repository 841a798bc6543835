"""Every word of the report, one table per language with the same keys (``--lang en|zh``).

The study note the lessons test is written in Chinese, so the report can be read in either
language. Numbers, units, channel names and man-page names stay as they are in both. A test
checks that both tables have exactly the same keys and the same ``{placeholders}``.

*Kernel path*: none. *Lifetime*: constant data.
*See also*: daemonkit.lessons (which has its own claim and verdict texts per language).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LANGS", "STRINGS", "strings"]

EN: dict[str, str] = {
    "page.title": "daemonkit report",
    "page.lead": "Plots and tables drawn from measured results; nothing in this page was "
    "measured while writing it.",
    "page.sources": "Source documents",
    "page.toc": "Contents",
    "page.generated": "Report written",
    "page.compare": "Compared with an older run: {old} (in the plots: dashed or dotted lines, "
    "black ticks).",
    "page.compare_machine": "Warning: the older run comes from a different machine ({old}); "
    "differences may be the machine, not the code.",
    "page.no_cjk": "",
    "sec.bench": "IPC round trips (daemonkit bench)",
    "sec.lessons": "The claims of the note, tested (daemonkit lessons)",
    "sec.failed": "Runs that failed or were skipped",
    "sec.throughput": "Streaming throughput (daemonkit throughput)",
    "tp.title": "Pipelined zmq-tcp messages to {where}",
    "tp.caption": "Messages queued back to back, then one flush: messages per second and "
    "payload MB/s (MB = 10^6 bytes) against message size, log scales. The tail is the time "
    "from the last send to the flush reply.",
    "tp.messages": "messages",
    "tp.seconds": "time",
    "tp.rate": "messages/s",
    "tp.tail": "tail",
    "sec.machine": "Machine",
    "bench.summary": "{n} results, timer overhead {timer}, recorded {date}.",
    "bench.nothing": "No result of this run measured anything: nothing to draw.",
    "peer.thread": "thread",
    "peer.process": "process",
    "peer.daemon": "daemon",
    "peer.remote": "remote",
    "cpu.same": "same CPU",
    "cpu.split": "split CPUs",
    "cpu.none": "scheduler",
    "col.channel": "channel",
    "col.peer": "peer",
    "col.size": "size",
    "col.ratio": "× fastest p50",
    "col.error": "error",
    "col.skipped": "skipped",
    "col.key": "item",
    "col.value": "value",
    "col.ws": "working set",
    "col.ratio_pt": "process / thread",
    "col.op": "operation",
    "col.rss": "parent memory",
    "col.per_op": "per operation: median (p10–p90)",
    "col.placement": "placement",
    "axis.latency_us": "round-trip latency (µs, log scale)",
    "axis.p50_us": "median round trip p50 (µs, log scale)",
    "axis.p50_lin_us": "median round trip p50 (µs)",
    "axis.latency_lin_us": "round-trip latency (µs); labels: p50 / p99, ▸ p99 beyond the edge",
    "axis.size_bytes": "message size (bytes, log scale)",
    "axis.mb_s": "throughput (MB/s, log scale)",
    "axis.ws": "working set per peer (bytes, log scale)",
    "axis.per_switch_us": "cost per context switch (µs, log scale above 1)",
    "axis.per_op_us": "time per operation (µs, log scale)",
    "compare.old": "older run",
    "compare.dotted": "dotted: older run",
    "summary.title": "Every case, fastest first: p50 (dot) and p99 (whisker end)",
    "summary.caption": "One row per case measured (channel, and size or placement where the "
    "run has several), sorted by the median round trip; the line runs from p50 to p99, on a "
    "log axis so that a 3 µs pipe and a 300 µs TCP tail share one picture. Colour: where the "
    "peer ran. The table gives each row's p50 as a multiple of the fastest.",
    "summary.xlabel": "round trip (µs, log scale)",
    "summary.whisker": "p50 to p99",
    "nines.title": "Latency by percentile per channel (CPU placement: {cpu})",
    "nines.caption": "Round-trip latency at each percentile, on a log \"nines\" axis: 90 %, "
    "99 % and 99.9 % are evenly spaced, so the tail is as visible as the median "
    "(HdrHistogram's percentile plot). A line that rises at the right is a long tail; "
    "dashed: the older run.",
    "nines.xlabel": "percentile",
    "stream.title": "One-way streams, fastest first: messages per second",
    "stream.caption": "bench --mode stream: messages sent back to back, one way, per second "
    "(dot), each timed batch's rate as a tick, on a log axis; colour: where the peer ran. The "
    "table gives how many times faster the fastest is than each row.",
    "stream.xlabel": "messages per second (log scale)",
    "cmp.title": "Ratios new/old with their significance",
    "cmp.caption": "Per case the p50 and p99 of this run over the older one's (below 1: "
    "faster now), ± the bootstrap's standard deviation. Significant only where the whole 95 % "
    "interval lies beyond ±{margin} (run-to-run noise).",
    "cmp.summary": "The run of {new} is {ratio}x {word} than the run of {old} (geometric "
    "mean of the p50 ratios of {n} cases).",
    "cmp.summary_ns": "Not significant.",
    "cmp.faster": "faster",
    "cmp.slower": "slower",
    "cmp.ns": "not significant",
    "cmp.nodist": "no distribution stored",
    "cdf.title": "Latency distribution per channel (CPU placement: {cpu})",
    "cdf.caption": "Fraction of round trips at or below each latency. Circle: p50; triangle: "
    "p99. A curve far to the right of its knee is a long tail.",
    "cdf.approx": "(percentiles only)",
    "cdf.ylabel": "fraction ≤ latency",
    "bars.title": "Median and p99 round trip per channel, thread vs process",
    "bars.notify": "no payload",
    "bars.caption": "Each channel at the smallest message size it was measured with. Dark bar: "
    "p50; light bar behind it: p99 (cut at the right edge when the tail is far beyond every "
    "median). Fastest channel at the top; the table gives each row's "
    "ratio to the fastest p50.",
    "size.title": "Latency and throughput against message size",
    "size.lat_title": "p50 round trip",
    "size.bw_title": "bytes moved per second",
    "size.caption": "Solid: process peer; dashed: thread peer. Small messages are bounded by "
    "the wake-up, large ones by copying bytes.",
    "place.title": "Where the two ends run: same CPU, split CPUs, or the scheduler's choice",
    "place.caption": "Median round trip of one channel at each --cpu placement. On one CPU a "
    "round trip is two context switches; across CPUs it is two cross-CPU wake-ups.",
    "ctx.title": "Cost of one context switch against working-set size (lmbench lat_ctx)",
    "ctx.caption": "Per-switch cost after subtracting the same reads without a switch. Line: "
    "median of the repeats; band: their spread (min to max).",
    "ctx.placement_title": "Ping-pong by placement, thread vs process",
    "create.title": "Cost of creating a thread or a process",
    "create.caption": "Per operation (dot: median; whiskers: p10 to p90), with the parent's "
    "resident memory small and large: fork copies page tables, so it grows with the parent; a "
    "thread does not.",
    "col.switches": "switches counted per round trip (T / P)",
    "col.vs_thread": "× thread",
    "axis.rtt_us": "round trip (µs)",
    "cpu.one": "same CPU",
    "ctx.placement_caption": "The same token ring with no working set, with both ends on one "
    "CPU, on two CPUs, or left to the scheduler. Bar: median of the repeats; whisker: min to max.",
    "create.parent": "parent resident memory ≈ {rss}",
    "col.rtt_range": "round trip: median (min–max)",
    "comm.title": "Passing a message: thread handoffs against process channels",
    "comm.caption": "Median round trip of the repeats (band: min to max) at each message size. "
    "Solid: between two threads; dashed: between two processes.",
    "lesson.claim": "Claim",
    "lesson.method": "Method",
    "lesson.verdict": "Verdict",
    "lesson.threshold": "threshold",
    "lesson.measurements": "Measurements",
    "verdict.holds": "holds",
    "verdict.partly": "partly holds",
    "verdict.not": "does not hold on this machine",
    "verdict.inconclusive": "inconclusive",
    "verdict.unknown": "no verdict",
}

ZH: dict[str, str] = {
    "page.title": "daemonkit 报告",
    "page.lead": "以下图表均取自已测得的结果；生成本页时没有进行任何测量。",
    "page.sources": "数据来源",
    "page.toc": "目录",
    "page.generated": "报告生成时间",
    "page.compare": "与较早的一次运行对比：{old}（图中以虚线、点线或黑色短竖线表示）。",
    "page.compare_machine": "注意：较早的那次运行来自另一台机器（{old}），"
    "差异可能来自机器而非代码。",
    "page.no_cjk": "本机没有中文字体，图中文字以英文显示；表格与说明为中文。",
    "sec.bench": "进程间通信往返延迟（daemonkit bench）",
    "sec.lessons": "笔记中的论断，逐条实测（daemonkit lessons）",
    "sec.failed": "失败或跳过的运行",
    "sec.throughput": "流式吞吐量（daemonkit throughput）",
    "tp.title": "发往 {where} 的流水线 zmq-tcp 消息",
    "tp.caption": "连续发送消息，最后发送一次 flush：每秒消息数与有效载荷 MB/s（MB = 10^6 字节）"
    "随消息大小的变化，对数坐标。尾部时间是从最后一次发送到 flush 回复的时间。",
    "tp.messages": "消息数",
    "tp.seconds": "用时",
    "tp.rate": "消息/秒",
    "tp.tail": "尾部",
    "sec.machine": "机器",
    "bench.summary": "共 {n} 条结果，计时开销 {timer}，记录于 {date}。",
    "bench.nothing": "这次运行没有任何成功的测量结果，无图可画。",
    "peer.thread": "线程",
    "peer.process": "进程",
    "peer.daemon": "守护进程",
    "peer.remote": "远程",
    "cpu.same": "同一 CPU",
    "cpu.split": "不同 CPU",
    "cpu.none": "由调度器决定",
    "col.channel": "通道",
    "col.peer": "对端",
    "col.size": "大小",
    "col.ratio": "相对最快 p50 的倍数",
    "col.error": "错误",
    "col.skipped": "跳过",
    "col.key": "项目",
    "col.value": "数值",
    "col.ws": "工作集",
    "col.ratio_pt": "进程 / 线程",
    "col.op": "操作",
    "col.rss": "父进程内存",
    "col.per_op": "每次操作：中位数（p10–p90）",
    "col.placement": "放置方式",
    "axis.latency_us": "往返延迟（µs，对数坐标）",
    "axis.p50_us": "往返延迟中位数 p50（µs，对数坐标）",
    "axis.p50_lin_us": "往返延迟中位数 p50（µs）",
    "axis.latency_lin_us": "往返延迟（µs）；标注：p50 / p99，▸ 表示 p99 超出右边界",
    "axis.size_bytes": "消息大小（字节，对数坐标）",
    "axis.mb_s": "吞吐量（MB/s，对数坐标）",
    "axis.ws": "每个对端的工作集（字节，对数坐标）",
    "axis.per_switch_us": "每次上下文切换的开销（µs，1 以上为对数坐标）",
    "axis.per_op_us": "每次操作耗时（µs，对数坐标）",
    "compare.old": "较早的运行",
    "compare.dotted": "点线：较早的运行",
    "summary.title": "全部用例，由快到慢：p50（圆点）与 p99（须线末端）",
    "summary.caption": "每个测量用例一行（通道；若本次运行有多种大小或放置，也列出），"
    "按往返延迟中位数排序；线段从 p50 延伸到 p99，横轴为对数坐标，"
    "3 µs 的管道与 300 µs 的 TCP 尾部可画在同一张图里。"
    "颜色表示对端运行的位置。表中给出每行 p50 相对最快者的倍数。",
    "summary.xlabel": "往返时间（µs，对数坐标）",
    "summary.whisker": "p50 到 p99",
    "nines.title": "各通道按百分位的延迟（CPU 放置：{cpu}）",
    "nines.caption": "各百分位上的往返延迟，横轴为对数“几个九”坐标：90 %、99 %、99.9 % 等距，"
    "尾部与中位数一样清楚（HdrHistogram 的百分位图）。右端上翘的曲线表示长尾；虚线为旧的运行。",
    "nines.xlabel": "百分位",
    "stream.title": "单向流，由快到慢：每秒消息数",
    "stream.caption": "bench --mode stream：单向连续发送的每秒消息数（圆点），"
    "每个计时批次的速率以短竖线表示，对数坐标；颜色表示对端运行的位置。表中给出最快者相对每行的倍数。",
    "stream.xlabel": "每秒消息数（对数坐标）",
    "cmp.title": "新/旧比值及其显著性",
    "cmp.caption": "每个用例本次运行与旧运行的 p50、p99 之比（小于 1 表示现在更快），"
    "± 为自助法的标准差。只有当 95 % 区间整体超出 ±{margin}（两次运行之间的噪声）时才算显著。",
    "cmp.summary": "{new} 的运行比 {old} 的运行{word} {ratio} 倍"
    "（{n} 个用例 p50 比值的几何平均）。",
    "cmp.summary_ns": "不显著。",
    "cmp.faster": "更快",
    "cmp.slower": "更慢",
    "cmp.ns": "不显著",
    "cmp.nodist": "未存储分布",
    "cdf.title": "各通道的延迟分布（CPU 放置：{cpu}）",
    "cdf.caption": "延迟不超过横轴数值的往返所占比例。圆点为 p50，三角为 p99。"
    "拐点右侧拖得越长，长尾越明显。",
    "cdf.approx": "（仅由百分位数绘出）",
    "cdf.ylabel": "≤ 该延迟的比例",
    "bars.title": "各通道往返延迟的中位数与 p99：线程 vs 进程",
    "bars.notify": "无数据",
    "bars.caption": "每个通道取其测量过的最小消息大小。深色条为 p50，"
    "其后浅色条为 p99（尾部远超所有中位数时在右边界截断）。"
    "最快的通道排在最上方；表中给出每行相对最快 p50 的倍数。",
    "size.title": "延迟和吞吐量随消息大小的变化",
    "size.lat_title": "往返延迟 p50",
    "size.bw_title": "每秒传输的字节数",
    "size.caption": "实线为进程对端，虚线为线程对端。小消息受唤醒开销限制，大消息受字节复制限制。",
    "place.title": "两端运行的位置：同一 CPU、不同 CPU 或由调度器决定",
    "place.caption": "同一通道在各 --cpu 放置方式下的往返延迟中位数。"
    "在同一 CPU 上，一次往返是两次上下文切换；跨 CPU 时则是两次跨 CPU 唤醒。",
    "ctx.title": "一次上下文切换的开销与工作集大小（lmbench lat_ctx 方法）",
    "ctx.caption": "减去无切换时相同读取的耗时后，每次切换的开销。"
    "线为多次重复的中位数，阴影为其范围（最小到最大）。",
    "ctx.placement_title": "按放置方式的乒乓往返：线程 vs 进程",
    "create.title": "创建线程与创建进程的开销",
    "create.caption": "每次操作的耗时（点为中位数，须线为 p10 到 p90），"
    "父进程常驻内存分别为小和大：fork 要复制页表，所以耗时随父进程增长；线程则不会。",
    "col.switches": "每次往返实测切换次数（线程 / 进程）",
    "col.vs_thread": "相对线程的倍数",
    "axis.rtt_us": "往返时间（µs）",
    "cpu.one": "同一 CPU",
    "ctx.placement_caption": "同样的令牌环、不读工作集，两端在同一 CPU、两个 CPU 或由调度器决定。"
    "柱为多次重复的中位数，须线为最小到最大。",
    "create.parent": "父进程常驻内存约 {rss}",
    "col.rtt_range": "往返时间：中位数（最小–最大）",
    "comm.title": "传递一条消息：线程间交接与进程间通道的对比",
    "comm.caption": "各消息大小下多次重复的往返时间中位数（阴影为最小到最大）。"
    "实线为两个线程之间，虚线为两个进程之间。",
    "lesson.claim": "论断",
    "lesson.method": "方法",
    "lesson.verdict": "结论",
    "lesson.threshold": "阈值",
    "lesson.measurements": "测量数据",
    "verdict.holds": "成立",
    "verdict.partly": "部分成立",
    "verdict.not": "在本机上不成立",
    "verdict.inconclusive": "无法判定",
    "verdict.unknown": "无结论",
}

STRINGS: Mapping[str, Mapping[str, str]] = {"en": EN, "zh": ZH}
LANGS = tuple(STRINGS)


def strings(lang: str) -> Mapping[str, str]:
    """The string table of ``lang`` (``en`` or ``zh``)."""
    return STRINGS[lang]
