"""Shared fixtures: every test is checked for leaked kernel objects and child processes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from facilities import check_requested, need
from procfs import children

from daemonkit.cleanup import KernelObject, list_objects, remove_object
from daemonkit.runtime import pid_alive


def _children() -> set[int]:
    """Live children of this process: zombies are children about to be reaped, not leaks."""
    return {pid for pid in children(os.getpid()) if pid_alive(pid)}


def _ours(objs: list[KernelObject]) -> list[KernelObject]:
    """Objects owned by this test process (other users of the machine are not our business)."""
    return [o for o in objs if o.owner == os.getpid()]


def pytest_configure(config: pytest.Config) -> None:
    check_requested()  # DAEMONKIT_REQUIRE names facilities: a typo must not require nothing


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.needs("facility")``: see tests/facilities.py."""
    for mark in item.iter_markers("needs"):
        need(mark.args[0])


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves kernel objects of this process or running children behind."""
    before_objs = set(_ours(list_objects()))
    before_kids = _children()
    yield
    leaked = [o for o in _ours(list_objects()) if o not in before_objs]
    kids = _children() - before_kids
    for obj in leaked:  # remove them so one leak does not fail every later test
        remove_object(obj)
    assert not leaked, f"kernel objects leaked: {leaked}"
    assert not kids, f"child processes left running: {sorted(kids)}"
