"""The words of the lessons: the shared frame here, each lesson's own text beside it.

Every lesson module has a ``TEXT`` table (``{"en": {...}, "zh": {...}}``) for its claim,
method, tables, verdict sentences and "why on this machine" paragraphs; :data:`FRAME` holds
what every lesson shares (labels, the interval and band sentences). :func:`strings` merges
them per language. Both languages have the same keys and the same placeholders (a test checks
it): the Chinese report says everything the English one says, written for Chinese readers
(full-width punctuation, "、" between list items, the usual technical terms).

Strings are ``str.format`` templates filled with measured figures; a key that starts with
``=`` is not looked up but printed as it is (a column named by a size).

Kernel path: none. Lifetime: none. See also: :mod:`daemonkit.lessons.render` (verdicts into
sentences), :mod:`daemonkit.report.strings` (the HTML report's own table).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from daemonkit.units import fmt_ns, fmt_size  # the lessons' text speaks the same units

__all__ = ["FRAME", "LANGS", "Tr", "fmt_ns", "fmt_size", "strings", "tr", "translator"]

LANGS = ("en", "zh")


class Tr(Protocol):
    def __call__(self, key: str, /, **args: Any) -> str: ...


FRAME: dict[str, dict[str, str]] = {
    "en": {
        "label.holds": "holds",
        "label.partly holds": "partly holds",
        "label.does not hold": "does not hold on this machine",
        "label.inconclusive": "inconclusive on this run",
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
        "ui.interval": "{quantity}: {point}, {level} % interval {lo} to {hi} ({n} repeats).",
        "ui.interval.at": "At {where}, {quantity}: {point}, {level} % interval {lo} to {hi} "
        "({n} repeats): {label}.",
        "ui.straddles": "The interval straddles the boundary {b}, so this run cannot decide.",
        "ui.undefined": "The quantity is undefined in part of the resamples (a cost that is not "
        "positive), so this run cannot decide.",
        "ui.bands": "holds if {quantity} >= {holds}, partly holds from {partly} to {holds}, does "
        "not hold below {partly}; a label only when the whole 95 % interval lies in one band",
        "ui.bands.binary": "holds if {quantity} >= {holds}, else does not hold; a label only "
        "when the whole 95 % interval lies on one side",
        "ui.then": "; ",
        "ui.why": "Why on this machine: {text}",
        "verdict.failed": "Not as predicted: {failed}.",
        "why.kpti": "KPTI is on here (the Meltdown mitigation): every system call and interrupt "
        "switches page tables twice, for threads and processes alike.",
        "why.vm": "This is a virtual machine (the CPU shows the hypervisor flag): the host "
        "schedules its vCPUs, so repeats vary more than on bare metal, and the cache sizes are "
        "the ones the hypervisor reports.",
    },
    "zh": {
        "label.holds": "成立",
        "label.partly holds": "部分成立",
        "label.does not hold": "在本机上不成立",
        "label.inconclusive": "本次运行无法判定",
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
        "ui.interval": "{quantity}：{point}，{level}% 置信区间为 {lo}～{hi}（重复 {n} 次）。",
        "ui.interval.at": "{where} 处，{quantity}：{point}，{level}% 置信区间为 {lo}～{hi}"
        "（重复 {n} 次）：{label}。",
        "ui.straddles": "区间跨过了分界 {b}，本次运行无法判定。",
        "ui.undefined": "部分重抽样中该量没有定义（开销不为正），本次运行无法判定。",
        "ui.bands": "{quantity} ≥ {holds} 为成立，在 {partly} 与 {holds} 之间为部分成立，低于 "
        "{partly} 为不成立；只有整个 95% 区间落在同一档内才下结论",
        "ui.bands.binary": "{quantity} ≥ {holds} 为成立，否则不成立；只有整个 95% 区间落在同一侧"
        "才下结论",
        "ui.then": "；",
        "ui.why": "为什么在本机上如此：{text}",
        "verdict.failed": "与预期不符的项：{failed}。",
        "why.kpti": "本机启用了 KPTI（针对 Meltdown 的缓解措施）：每次系统调用和中断都要切换两次"
        "页表，线程和进程都一样。",
        "why.vm": "这是一台虚拟机（CPU 带有 hypervisor 标志）：虚拟 CPU 由宿主机调度，重复测量的"
        "波动比物理机大，缓存大小也是虚拟化层报告的数值。",
    },
}


@functools.cache
def strings(lang: str) -> Mapping[str, str]:
    """Every string of *lang*: the frame and each lesson's ``TEXT``."""
    from daemonkit.lessons.base import LESSONS  # here: the lessons import this module

    out = dict(FRAME[lang])
    for module in LESSONS.values():
        out.update(importlib.import_module(module).TEXT[lang])
    return out


def tr(lang: str, key: str, /, **args: Any) -> str:
    """The string *key* in *lang*, filled with *args*; ``=text`` is returned as ``text``."""
    if key.startswith("="):
        return key[1:]
    return strings(lang)[key].format(**args)


def translator(lang: str) -> Tr:
    """:func:`tr` with the language fixed."""

    def t(key: str, /, **args: Any) -> str:
        return tr(lang, key, **args)

    return t
