"""tests/facilities.py: a missing facility skips a test, and DAEMONKIT_REQUIRE makes it fail."""

from __future__ import annotations

import os

import pytest
from facilities import FACILITIES, check_requested, missing, require

_VARIABLES = [
    "DAEMONKIT_REQUIRE",
    *(f"DAEMONKIT_REQUIRE_{f.upper().replace('-', '_')}" for f in FACILITIES),
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_missing_facility_skips_with_its_reason(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(pytest.skip.Exception, match=r"^needs netem: no sch_netem$"):
        require("netem", "no sch_netem")
    clean_env.setenv("DAEMONKIT_REQUIRE", "root,mqueue")  # others are required, not this one
    with pytest.raises(pytest.skip.Exception):
        require("netem", "no sch_netem")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DAEMONKIT_REQUIRE", "all"), ("DAEMONKIT_REQUIRE", "root, netem"),
     ("DAEMONKIT_REQUIRE_NETEM", "1")],
)  # fmt: skip
def test_a_required_facility_that_is_missing_fails(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(pytest.fail.Exception, match="netem is required here but missing"):
        require("netem", "no sch_netem")


def test_an_unknown_name_in_daemonkit_require_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DAEMONKIT_REQUIRE", "mqueue,chromum")
    with pytest.raises(pytest.UsageError, match="unknown facility 'chromum'"):
        check_requested()
    clean_env.setenv("DAEMONKIT_REQUIRE", "all")
    check_requested()


def test_the_mqueue_probe_agrees_with_the_mount_table() -> None:
    mounted = os.path.ismount("/dev/mqueue")
    assert (missing("mqueue") is None) == mounted
