"""Reading a test's ``@pytest.mark.parametrize`` values back: how the tests prove that every
registered channel and daemon endpoint is exercised by the contract tests.

No tests here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _pytest.mark.structures import ParameterSet

__all__ = ["parametrized"]


def parametrized(test: Callable[..., object]) -> list[tuple[Any, ...]]:
    """The argument tuples *test* runs with (one per case; a single argument as a 1-tuple),
    as its parametrize marks list them, skipped cases left out."""
    cases: list[tuple[Any, ...]] = []
    for mark in getattr(test, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        for value in mark.args[1]:
            if isinstance(value, ParameterSet):
                if any(m.name in ("skip", "skipif") for m in value.marks):
                    continue
                value = value.values
            cases.append(tuple(value) if isinstance(value, tuple) else (value,))
    return cases
