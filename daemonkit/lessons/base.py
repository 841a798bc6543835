"""The contract every lesson module keeps: one small typed protocol, one registry.

A lesson is a module (``ctx_switch``, ``creation``, ...) with a name, the claims it tests,
its own words (``TEXT``, both languages) and four functions: ``steps`` (how often ``run``
ticks), ``run`` (measure; the lesson's ``Measurements`` ``TypedDict``, JSON data stored as
it is), ``verdicts`` (a pure function of the measurements and the machine facts) and
``tables`` (the terminal view).
The module itself satisfies :class:`Lesson`, so ``mypy`` checks every lesson against it where
:func:`load` hands one out.

Kernel path: none. Lifetime: none.
See also: PEP 544 (protocols; modules as implementations), :mod:`daemonkit.lessons.verdict`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the CLI imports this registry: it must not load numpy or rich
    from daemonkit.lessons.report import Table, Tick
    from daemonkit.lessons.text import Tr
    from daemonkit.lessons.verdict import Verdict

__all__ = ["LESSONS", "Facts", "Lesson", "load"]

# What :func:`daemonkit.machine.facts` returns: read by verdicts, never written.
Facts = Mapping[str, Any]

# name -> module; the order is the note's.
LESSONS: dict[str, str] = {
    "address-space": "daemonkit.lessons.address_space",
    "ctx-switch": "daemonkit.lessons.ctx_switch",
    "creation": "daemonkit.lessons.creation",
    "communication": "daemonkit.lessons.communication",
    "semaphore-vs-signal": "daemonkit.lessons.semaphore_vs_signal",
    "daemon": "daemonkit.lessons.daemon",
}


class Lesson(Protocol):
    """One experiment: what it is called, which claims it tests, how it runs and decides."""

    NAME: str
    CLAIMS: tuple[str, ...]
    TEXT: dict[str, dict[str, str]]  # {"en": {...}, "zh": {...}}: the lesson's own words

    def steps(self, quick: bool) -> int: ...

    # The measurements are each lesson's own ``Measurements`` TypedDict (``ctx_switch.
    # Measurements``, ...); one protocol over six of them sees them as JSON data.
    def run(self, quick: bool, tick: Tick) -> Any: ...

    def verdicts(self, m: Any, facts: Facts) -> list[Verdict]: ...

    def tables(self, m: Any, tr: Tr) -> list[Table]: ...


def load(name: str) -> Lesson:
    """The lesson module called *name* (a key of :data:`LESSONS`)."""
    module: Lesson = importlib.import_module(LESSONS[name])  # a module satisfies the protocol
    return module
