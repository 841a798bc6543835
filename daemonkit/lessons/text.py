"""Every user-facing string of the lessons, one table per language.

``EN`` and ``ZH`` have the same keys (a test checks it): the Chinese report says everything
the English one says. Strings are ``str.format`` templates filled with measured figures;
a key that starts with ``=`` is not looked up but printed as it is (a column named by a size).

Kernel path: none. Lifetime: none. See also: :mod:`daemonkit.report.strings` (the HTML
report's own table).
"""

from __future__ import annotations

from typing import Any, Protocol

from daemonkit.units import fmt_ns, fmt_size  # the lessons' text speaks the same units

__all__ = ["EN", "LANGS", "ZH", "Tr", "fmt_ns", "fmt_size", "tr", "translator"]


class Tr(Protocol):
    def __call__(self, key: str, /, **args: Any) -> str: ...


EN: dict[str, str] = {
    # -- frame
    "label.holds": "holds",
    "label.partly holds": "partly holds",
    "label.does not hold": "does not hold on this machine",
    "label.inconclusive": "inconclusive",
    "yes": "yes",
    "no": "no",
    "unavailable": "unavailable",
    "ui.claim": "Claim",
    "ui.method": "Method",
    "ui.verdict": "Verdict {claim}: {label}.",
    "ui.threshold": "threshold: {text}",
    "ui.failed": "the lesson could not run: {msg}",
    "ui.no_threshold": "nothing was measured, so no threshold was applied",
    "ui.running": "lesson {name}",
    "ui.seconds": "{name} took {s:.1f} s",
    "ui.json": "results written to {path}",
    # -- claims, in the note's words, and how each is tested
    "claim.address-space": "C1 (作用 / 从属关系): a process is the unit of resource allocation "
    "with its own address space; a thread is the unit of scheduling and shares its "
    "process's resources; a thread belongs to exactly one process.",
    "claim.ctx-switch": "C2 (上下文切换的开销): a process switch costs far more than a thread "
    "switch. C3 (CPU Cache/TLB 不命中): after a switch the caches and TLB are cold, and that "
    "second cost is where the two differ.",
    "claim.creation": "C3b: creating a process costs more than creating a thread.",
    "claim.communication": "C4 (线程通信代价低，进程通信代价高): threads communicate cheaply "
    "through shared memory; processes must go through the kernel.",
    "claim.semaphore-vs-signal": "C5 (信号量 / 信号): a semaphore is a counter; a signal is "
    "a notification that an event happened.",
    "claim.daemon": "C6 (守护进程): a daemon lives on when its terminal goes away; it is made "
    "by fork + parent exit and setsid, and its parent is init.",
    "method.address-space": "Two threads and a forked child report gettid/getpid and "
    "/proc/PID/task; a thread and a child each write shared memory (the child counting the "
    "minor page faults copy-on-write costs it) and close a descriptor; the parent checks "
    "what it sees afterwards.",
    "method.ctx-switch": "lmbench lat_ctx: a pipe token ring between two peers (threads, or "
    "processes) pinned to one CPU; each receiver reads a private working set of W bytes "
    "(memchr). Per switch = (round trip - pipe calls alone - 2 x hot read) / 2; the kernel's "
    "count of switches is checked; repeated, median [q1-q3]. The W=0 ring is also run "
    "on two CPUs and unpinned.",
    "method.creation": "Per operation, interleaved: thread start+join, fork+_exit+wait, "
    "fork+exec /bin/true+wait, posix_spawn /bin/true+wait; at the parent's normal resident "
    "size and again after it has touched 1 GiB (fork copies page tables, posix_spawn does "
    "not).",
    "method.communication": "Round trips of 0 B to 1 MiB messages through daemonkit's "
    "channels: between threads (queues passing a reference; a condition variable, "
    "notification only: the bytes stay where they are) and between "
    "processes (pipe, Unix socket, POSIX message queue, shared memory + semaphore, ZeroMQ); "
    "a pipe between threads as a control. CPython's GIL makes every thread handoff a wake-up "
    "plus a lock handoff, so small messages are not free between threads either.",
    "method.semaphore-vs-signal": "A forked receiver with the signals blocked gets K "
    "sem_post, then K sigqueue(SIGUSR1, i), then K sigqueue(SIGRTMIN, i); it then counts "
    "successful sem_trywait calls and reads its pending signals, with their values, from a "
    "signalfd.",
    "method.daemon": "forkpty makes a session leader (a shell) on a pseudo-terminal; it starts "
    "a plain job (sleep, in its process group) and the demo daemon (daemonkit start). The "
    "master side is closed (hang-up); /proc shows who survived. The daemon forks twice: "
    "after setsid the first child is a session leader and could acquire a terminal again "
    "by opening one; the grandchild cannot.",
    # -- progress
    "step.address-space.ids": "address-space: thread and process ids",
    "step.address-space.write": "address-space: writes by a thread and by a child",
    "step.address-space.fd": "address-space: descriptors closed by a thread and by a child",
    "step.ctx-switch.w": "ctx-switch: one working-set size done",
    "step.ctx-switch.placement": "ctx-switch: one CPU placement done",
    "step.creation.small": "creation: parent at its normal size done",
    "step.creation.big": "creation: parent with 1 GiB touched done",
    "step.communication": "communication: one channel done",
    "step.semaphore-vs-signal": "semaphore-vs-signal: bursts counted",
    "step.daemon.started": "daemon: job and daemon started from the pty",
    "step.daemon.hangup": "daemon: terminal hung up",
    # -- C1
    "as.ids.title": "Who runs: thread and process ids",
    "as.task.title": "/proc/PID/task: one entry per thread",
    "as.obs.title": "What one side sees of the other's actions",
    "as.main": "main thread",
    "as.thread": "thread",
    "as.child": "forked child",
    "as.col.who": "who",
    "as.col.pid": "getpid()",
    "as.col.tid": "gettid()",
    "as.col.task_of": "listed in /proc/PID/task of",
    "as.col.tasks": "tasks (tids)",
    "as.col.observation": "observation",
    "as.col.as_predicted": "as the note predicts",
    "obs.one_pid_many_tids": "all threads report one pid; each tid is listed in /proc/PID/task",
    "obs.child_own_process": "the child has its own pid and a single task",
    "obs.thread_write_visible": "a thread wrote 42; the main thread reads {v}",
    "obs.child_write_invisible": "the child wrote 1 byte in each of {pages} pages; the parent "
    "sees {seen} of them",
    "obs.copy_on_write_faults": "the child's writes cost {w} minor faults (reading the same "
    "pages: {r}) for {pages} pages",
    "obs.fd_shared_by_threads": "a descriptor closed by a thread is closed for the main thread",
    "obs.fd_copied_by_fork": "a descriptor closed by the child is still open in the parent",
    "verdict.address-space": "{ok} of {total} observations as the note predicts (not as "
    "predicted: {failed}); copy-on-write: {faults} faults for {pages} pages written.",
    "threshold.address-space": "holds: all observations; does not hold: half or fewer; "
    "copy-on-write counted at >= {cow} faults per written page",
    # -- C2, C3
    "cs.sweep.title": "Per-switch cost by working set W, pinned to one CPU (median [q1–q3])",
    "cs.place.title": "Round trip at W=0 by CPU placement (median [q1–q3])",
    "cs.perf.title": "Hardware counters per switch",
    "cs.col.w": "W",
    "cs.col.base": "no-switch baseline",
    "cs.col.thread": "thread switch",
    "cs.col.process": "process switch",
    "cs.col.ratio": "process/thread (~ noise)",
    "cs.col.beyond": "beyond same work (t / p)",
    "cs.col.switches": "switches per round trip (t / p)",
    "cs.col.placement": "placement",
    "cs.col.rtt_thread": "threads",
    "cs.col.rtt_process": "processes",
    "cs.col.tlb_thread": "dTLB misses, thread",
    "cs.col.cache_thread": "cache misses, thread",
    "cs.col.tlb_process": "dTLB misses, process",
    "cs.col.cache_process": "cache misses, process",
    "cs.place.same": "one CPU (both pinned)",
    "cs.place.split": "two CPUs (split)",
    "cs.place.none": "unpinned",
    "verdict.ctx-switch": "Process/thread per-switch ratio {r0} at W={w0}, {rmax} at W={wmax} "
    "(all: {ratios}).",
    "verdict.ctx-switch.noisy": "Within noise (interquartile ranges overlap) at W = {noisy}.",
    "verdict.ctx-switch.placement": "CPU placement moved the round trip more "
    "({placement_effect_ns}) than thread versus process ({kind_effect_ns}).",
    "verdict.ctx-switch.kind": "Thread versus process moved the round trip more ({kind_effect_ns}) "
    "than CPU placement ({placement_effect_ns}).",
    "verdict.ctx-switch.missing": "Fewer than {min_switches} switches per round trip were "
    "counted at {missing}: those hops did not all switch, so no per-switch cost is claimed.",
    "threshold.ctx-switch": "'far more': ratio >= {far} beyond noise at every W "
    "(holds), at some W or a smaller excess beyond noise (partly); >= {min_switches} counted "
    "switches per round trip",
    "verdict.ctx-switch.c3": "From W={w0} to W={wmax} the per-switch cost grew x{cold_thread} "
    "for threads (+{grow_thread}) and x{cold_process} for processes (+{grow_process}).",
    "verdict.ctx-switch.perf_unavailable": "dTLB and cache miss counters are unavailable on "
    "this machine (perf: {perf}).",
    "verdict.ctx-switch.perf": "At W={wmax}, dTLB load misses per switch: thread "
    "{tlb_thread}, process {tlb_process}.",
    "threshold.ctx-switch.c3": "caches cold: cost at the largest W >= {cold} x the cost at "
    "W=0, beyond noise; the difference lies there: the process's growth >= {gap} x the "
    "thread's, process above thread beyond noise (both: holds; one: partly)",
    # -- C3b
    "cr.title": "Cost of creating and ending one thread or process",
    "cr.col.rss": "parent RSS",
    "cr.col.method": "method",
    "cr.col.median": "median",
    "cr.col.p10_p90": "p10–p90",
    "cr.col.ratio": "/ thread",
    "cr.method.thread": "thread start+join",
    "cr.method.fork": "fork+_exit+wait",
    "cr.method.fork+exec": "fork+exec /bin/true",
    "cr.method.posix_spawn": "posix_spawn /bin/true",
    "verdict.creation": "fork costs {fork_small} x a thread at {rss_small} MiB resident and "
    "{fork_big} x at {rss_big} MiB (the smallest process/thread ratio: {min_ratio}); from "
    "the small to the large parent fork grew x{fork_growth}, posix_spawn x{spawn_growth}. "
    "{clear} of {total} process/thread comparisons are clear of noise (p10 above the "
    "thread's p90).",
    "threshold.creation": "'costs more': every process method >= {more} x a thread, its p10 "
    "above the thread's p90, at both sizes (holds); some of them (partly)",
    # -- C4
    "cm.title": "Round trip by message size (median [q1–q3])",
    "cm.col.channel": "channel",
    "cm.col.between": "between",
    "cm.errors": "Points that could not be measured here",
    "cm.col.size": "size",
    "cm.no_payload": "(notification only)",
    "cm.col.error": "error",
    "cm.group.thread": "threads, no kernel object",
    "cm.group.process": "processes, through the kernel",
    "cm.group.control": "threads, through the kernel",
    "verdict.communication": "Best process channel / best thread handoff: {ratios}. Cheaper "
    "between threads at {cheaper}; not at {not}.",
    "threshold.communication": "'cheaper': ratio >= {threshold} beyond noise; at every size "
    "(holds), at some (partly)",
    # -- C5
    "sv.title": "K notifications in a burst, counted by the receiver",
    "sv.col.what": "mechanism",
    "sv.col.sent": "sent",
    "sv.col.delivered": "delivered",
    "sv.col.note": "values received",
    "sv.sem": "POSIX semaphore (sem_post / sem_trywait)",
    "sv.standard": "standard signal SIGUSR1",
    "sv.realtime": "real-time signal SIGRTMIN",
    "sv.values": "{v}",
    "sv.order": "in order: {ok}; first: {v}",
    "verdict.semaphore-vs-signal": "{waits} of {k} semaphore posts waited for; {std} of "
    "{std_sent} standard signals delivered; {rt} of {rt_sent} real-time signals delivered, "
    "in order: {order}.",
    "threshold.semaphore-vs-signal": "holds: waits = posts, standard deliveries < sent, "
    "real-time deliveries = sent and in order; partly: some of these",
    # -- C6
    "dm.title": "daemon(7) properties from /proc, before and after the hang-up",
    "dm.col.what": "what",
    "dm.col.value": "value",
    "dm.start": "daemonkit start failed",
    "dm.col.prop": "property",
    "dm.col.shell": "pty shell",
    "dm.col.job": "plain job",
    "dm.col.job_after": "job after",
    "dm.col.daemon": "daemon",
    "dm.col.daemon_after": "daemon after",
    "dm.prop.pid": "pid",
    "dm.prop.ppid": "parent pid",
    "dm.prop.pgid": "process group",
    "dm.gone": "gone",
    "dm.prop.sid": "session",
    "dm.prop.leader": "session leader",
    "dm.prop.tty": "controlling tty",
    "dm.prop.cwd": "cwd",
    "dm.prop.umask": "umask",
    "dm.prop.fds": "descriptors",
    "dm.prop.state": "state",
    "verdict.daemon": "After the hang-up the shell died of {sig}; the daemon (pid {dpid}, "
    "session {dsid}, parent {ppid}) kept running (not as predicted: {failed}).",
    "verdict.daemon.nostart": "The daemon could not be started: {msg}",
    "threshold.daemon": "holds: the plain job died, the daemon survived, with no controlling "
    "tty, its own session and not its leader; does not hold: the daemon died",
}

ZH: dict[str, str] = {
    "label.holds": "成立",
    "label.partly holds": "部分成立",
    "label.does not hold": "在本机上不成立",
    "label.inconclusive": "无法判定",
    "yes": "是",
    "no": "否",
    "unavailable": "不可用",
    "ui.claim": "论断",
    "ui.method": "方法",
    "ui.verdict": "结论 {claim}：{label}。",
    "ui.threshold": "阈值：{text}",
    "ui.failed": "本实验无法运行：{msg}",
    "ui.no_threshold": "没有测量数据，因此未应用阈值",
    "ui.running": "实验 {name}",
    "ui.seconds": "{name} 用时 {s:.1f} 秒",
    "ui.json": "结果已写入 {path}",
    "claim.address-space": "C1（作用 / 从属关系）：进程是资源分配的单位，有独立的地址空间；"
    "线程是调度的单位，共享所属进程的资源；一个线程只属于一个进程。",
    "claim.ctx-switch": "C2（上下文切换的开销）：进程切换的开销远远大于线程切换。"
    "C3（CPU Cache/TLB 不命中）：切换后缓存和 TLB 失效，两者的差异体现在这第二项开销上。",
    "claim.creation": "C3b：创建进程的开销大于创建线程。",
    "claim.communication": "C4（线程通信代价低，进程通信代价高）：线程通过共享内存廉价通信；"
    "进程必须经过内核。",
    "claim.semaphore-vs-signal": "C5（信号量 / 信号）：信号量是一个计数器；信号是通知某个事件"
    "已经发生。",
    "claim.daemon": "C6（守护进程）：终端关闭后守护进程继续运行；它由 fork、父进程退出和 "
    "setsid 创建，其父进程是 init。",
    "method.address-space": "两个线程和一个 fork 出的子进程报告 gettid/getpid 以及 "
    "/proc/PID/task；线程和子进程各自写共享内存（子进程统计写时复制引起的次缺页次数）并关闭"
    "一个描述符；之后由父进程检查它看到的结果。",
    "method.ctx-switch": "lmbench lat_ctx：两个绑定在同一 CPU 上的对端（线程或进程）通过管道"
    "传递令牌；每个接收方读取自己私有的 W 字节工作集（memchr）。每次切换 = (往返时间 - 单独的"
    "管道调用 - 2 × 热读) / 2；核对内核统计的切换次数；重复测量，给出中位数 [q1-q3]。"
    "W=0 的环也在两个 CPU 上和不绑定时运行。",
    "method.creation": "逐次计时、交错进行：线程 start+join、fork+_exit+wait、fork+exec "
    "/bin/true+wait、posix_spawn /bin/true+wait；父进程在正常常驻内存下测一次，触碰 1 GiB "
    "内存后再测一次（fork 要复制页表，posix_spawn 不需要）。",
    "method.communication": "通过 daemonkit 的通道往返传送 0 B 到 1 MiB 的消息：线程之间"
    "（队列传递引用；条件变量只是通知，数据留在原处）与进程之间（管道、Unix 套接字、"
    "POSIX 消息队列、共享内存+信号量、"
    "ZeroMQ）；另以线程之间的管道作对照。CPython 的 GIL 使每次线程交接都要一次唤醒加一次"
    "锁交接，所以线程之间传小消息也不是免费的。",
    "method.semaphore-vs-signal": "一个阻塞了这些信号的子进程依次收到 K 次 sem_post、K 次 "
    "sigqueue(SIGUSR1, i)、K 次 sigqueue(SIGRTMIN, i)；然后它统计 sem_trywait 成功的次数，"
    "并从 signalfd 读出挂起的信号及其附带的值。",
    "method.daemon": "forkpty 在伪终端上创建一个会话首进程（相当于 shell）；它启动一个普通作业"
    "（sleep，在它的进程组里）和演示守护进程（daemonkit start）。关闭主设备端（挂断）后，"
    "从 /proc 查看谁还活着。守护进程 fork 两次：setsid 之后第一个子进程是会话首进程，打开终端"
    "时可能再次获得控制终端；孙进程则不会。",
    "step.address-space.ids": "address-space：线程和进程 ID",
    "step.address-space.write": "address-space：线程和子进程的写入",
    "step.address-space.fd": "address-space：线程和子进程关闭描述符",
    "step.ctx-switch.w": "ctx-switch：完成一个工作集大小",
    "step.ctx-switch.placement": "ctx-switch：完成一种 CPU 放置",
    "step.creation.small": "creation：父进程正常大小时完成",
    "step.creation.big": "creation：父进程触碰 1 GiB 后完成",
    "step.communication": "communication：完成一个通道",
    "step.semaphore-vs-signal": "semaphore-vs-signal：突发计数完成",
    "step.daemon.started": "daemon：已从伪终端启动作业和守护进程",
    "step.daemon.hangup": "daemon：终端已挂断",
    "as.ids.title": "谁在运行：线程与进程 ID",
    "as.task.title": "/proc/PID/task：每个线程一项",
    "as.obs.title": "一方能看到另一方的哪些操作",
    "as.main": "主线程",
    "as.thread": "线程",
    "as.child": "fork 出的子进程",
    "as.col.who": "谁",
    "as.col.pid": "getpid()",
    "as.col.tid": "gettid()",
    "as.col.task_of": "列在哪个进程的 /proc/PID/task 中",
    "as.col.tasks": "任务（tid）",
    "as.col.observation": "观察",
    "as.col.as_predicted": "与笔记预期相符",
    "obs.one_pid_many_tids": "所有线程报告同一个 pid；每个 tid 都列在 /proc/PID/task 中",
    "obs.child_own_process": "子进程有自己的 pid，且只有一个任务",
    "obs.thread_write_visible": "线程写入 42；主线程读到 {v}",
    "obs.child_write_invisible": "子进程在 {pages} 个页中各写了 1 字节；父进程看到其中 {seen} 个",
    "obs.copy_on_write_faults": "子进程的写入引起 {w} 次次缺页（只读同样的页：{r} 次），共 "
    "{pages} 个页",
    "obs.fd_shared_by_threads": "线程关闭的描述符对主线程也关闭了",
    "obs.fd_copied_by_fork": "子进程关闭的描述符在父进程中仍然打开",
    "verdict.address-space": "{total} 项观察中有 {ok} 项与笔记预期相符（不符：{failed}）；"
    "写时复制：写 {pages} 个页引起 {faults} 次缺页。",
    "threshold.address-space": "成立：全部相符；不成立：一半或更少相符；每写一页缺页 >= {cow} "
    "次即计为写时复制",
    "cs.sweep.title": "按工作集 W 的每次切换开销，绑定在一个 CPU 上（中位数 [q1–q3]）",
    "cs.place.title": "W=0 时按 CPU 放置的往返时间（中位数 [q1–q3]）",
    "cs.perf.title": "每次切换的硬件计数",
    "cs.col.w": "W",
    "cs.col.base": "无切换基线",
    "cs.col.thread": "线程切换",
    "cs.col.process": "进程切换",
    "cs.col.ratio": "进程/线程（~ 噪声内）",
    "cs.col.beyond": "超出同样工作的部分（线程 / 进程）",
    "cs.col.switches": "每次往返的切换次数（线程 / 进程）",
    "cs.col.placement": "放置",
    "cs.col.rtt_thread": "线程",
    "cs.col.rtt_process": "进程",
    "cs.col.tlb_thread": "dTLB 未命中，线程",
    "cs.col.cache_thread": "缓存未命中，线程",
    "cs.col.tlb_process": "dTLB 未命中，进程",
    "cs.col.cache_process": "缓存未命中，进程",
    "cs.place.same": "同一 CPU（都绑定）",
    "cs.place.split": "两个 CPU（分开）",
    "cs.place.none": "不绑定",
    "verdict.ctx-switch": "进程/线程每次切换开销之比：W={w0} 时 {r0}，W={wmax} 时 {rmax}"
    "（全部：{ratios}）。",
    "verdict.ctx-switch.noisy": "在 W = {noisy} 时差异在噪声范围内（四分位区间重叠）。",
    "verdict.ctx-switch.placement": "CPU 放置对往返时间的影响（{placement_effect_ns}）大于线程与"
    "进程之别（{kind_effect_ns}）。",
    "verdict.ctx-switch.kind": "线程与进程之别对往返时间的影响（{kind_effect_ns}）大于 CPU 放置"
    "（{placement_effect_ns}）。",
    "verdict.ctx-switch.missing": "在 {missing} 统计到的每次往返切换次数少于 {min_switches}："
    "这些传递并非都发生了切换，因此不给出每次切换的开销。",
    "threshold.ctx-switch": "“远远大于”：每个 W 上比值 >= {far} 且超出噪声（成立），"
    "部分 W 上如此或有较小但超出噪声的差距（部分成立）；每次往返统计到的切换 >= {min_switches} 次",
    "verdict.ctx-switch.c3": "从 W={w0} 到 W={wmax}，每次切换的开销线程增长 ×{cold_thread}"
    "（+{grow_thread}），进程增长 ×{cold_process}（+{grow_process}）。",
    "verdict.ctx-switch.perf_unavailable": "本机无法使用 dTLB 和缓存未命中计数器（perf：{perf}）。",
    "verdict.ctx-switch.perf": "W={wmax} 时每次切换的 dTLB 加载未命中：线程 {tlb_thread}，"
    "进程 {tlb_process}。",
    "threshold.ctx-switch.c3": "缓存失效：最大 W 时的开销 >= W=0 时的 {cold} 倍且超出噪声；"
    "差异在此：进程的增长 >= 线程的 {gap} 倍，且进程高于线程超出噪声（两者都满足：成立；"
    "满足其一：部分成立）",
    "cr.title": "创建并结束一个线程或进程的开销",
    "cr.col.rss": "父进程常驻内存",
    "cr.col.method": "方式",
    "cr.col.median": "中位数",
    "cr.col.p10_p90": "p10–p90",
    "cr.col.ratio": "/ 线程",
    "cr.method.thread": "线程 start+join",
    "cr.method.fork": "fork+_exit+wait",
    "cr.method.fork+exec": "fork+exec /bin/true",
    "cr.method.posix_spawn": "posix_spawn /bin/true",
    "verdict.creation": "常驻 {rss_small} MiB 时 fork 的开销是线程的 {fork_small} 倍，常驻 "
    "{rss_big} MiB 时是 {fork_big} 倍（进程/线程的最小比值：{min_ratio}）；从小父进程到大父进程，"
    "fork 增长 ×{fork_growth}，posix_spawn 增长 ×{spawn_growth}。{total} 个进程/线程比较中"
    "有 {clear} 个超出噪声（p10 高于线程的 p90）。",
    "threshold.creation": "“开销更大”：两种大小下每种进程方式都 >= 线程的 {more} 倍，且其 p10 "
    "高于线程的 p90（成立）；部分满足（部分成立）",
    "cm.title": "按消息大小的往返时间（中位数 [q1–q3]）",
    "cm.col.channel": "通道",
    "cm.col.between": "之间",
    "cm.errors": "本机无法测量的点",
    "cm.col.size": "大小",
    "cm.no_payload": "（仅通知）",
    "cm.col.error": "错误",
    "cm.group.thread": "线程之间，无内核对象",
    "cm.group.process": "进程之间，经过内核",
    "cm.group.control": "线程之间，经过内核",
    "verdict.communication": "最佳进程通道 / 最佳线程交接：{ratios}。线程之间更便宜的大小："
    "{cheaper}；不更便宜的：{not}。",
    "threshold.communication": "“更便宜”：比值 >= {threshold} 且超出噪声；所有大小都如此（成立），"
    "部分大小（部分成立）",
    "sv.title": "一次突发的 K 个通知，由接收方计数",
    "sv.col.what": "机制",
    "sv.col.sent": "发送",
    "sv.col.delivered": "递送",
    "sv.col.note": "收到的值",
    "sv.sem": "POSIX 信号量（sem_post / sem_trywait）",
    "sv.standard": "标准信号 SIGUSR1",
    "sv.realtime": "实时信号 SIGRTMIN",
    "sv.values": "{v}",
    "sv.order": "按顺序：{ok}；开头：{v}",
    "verdict.semaphore-vs-signal": "{k} 次信号量 post 中有 {waits} 次被等到；{std_sent} 个标准"
    "信号递送了 {std} 个；{rt_sent} 个实时信号递送了 {rt} 个，按顺序：{order}。",
    "threshold.semaphore-vs-signal": "成立：等待次数 = post 次数，标准信号递送数 < 发送数，"
    "实时信号递送数 = 发送数且按顺序；部分成立：满足其中一部分",
    "dm.title": "从 /proc 读取的 daemon(7) 属性，挂断前后",
    "dm.col.what": "项目",
    "dm.col.value": "值",
    "dm.start": "daemonkit start 失败",
    "dm.col.prop": "属性",
    "dm.col.shell": "伪终端 shell",
    "dm.col.job": "普通作业",
    "dm.col.job_after": "挂断后的作业",
    "dm.col.daemon": "守护进程",
    "dm.col.daemon_after": "挂断后的守护进程",
    "dm.prop.pid": "pid",
    "dm.prop.ppid": "父进程 pid",
    "dm.prop.pgid": "进程组",
    "dm.gone": "已终止",
    "dm.prop.sid": "会话",
    "dm.prop.leader": "会话首进程",
    "dm.prop.tty": "控制终端",
    "dm.prop.cwd": "当前目录",
    "dm.prop.umask": "umask",
    "dm.prop.fds": "描述符",
    "dm.prop.state": "状态",
    "verdict.daemon": "挂断后 shell 因 {sig} 而终止；守护进程（pid {dpid}，会话 {dsid}，"
    "父进程 {ppid}）继续运行（不符：{failed}）。",
    "verdict.daemon.nostart": "无法启动守护进程：{msg}",
    "threshold.daemon": "成立：普通作业终止，守护进程存活，没有控制终端，有自己的会话且不是会话"
    "首进程；不成立：守护进程终止",
}

LANGS = {"en": EN, "zh": ZH}


def tr(lang: str, key: str, /, **args: Any) -> str:
    """The string *key* in *lang*, filled with *args*; ``=text`` is returned as ``text``."""
    if key.startswith("="):
        return key[1:]
    return LANGS[lang][key].format(**args)


def translator(lang: str) -> Tr:
    """:func:`tr` with the language fixed."""

    def t(key: str, /, **args: Any) -> str:
        return tr(lang, key, **args)

    return t
