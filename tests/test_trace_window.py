"""The trace's timeline window: round trips the client timed, typical when there are any.

The window is a pure function of the client's timestamps and the events, so it is checked
here on a ping-pong written out event by event (one CPU, the client waking the peer and the
peer waking the client in every round trip, another task taking the CPU where a round trip
stalls), on either side of its condition: a typical stretch exists (it is shown, and the
stalls beside it are not) or none does (the nearest is shown, and the output says so). The
terminal view keeps a turn of an end that is shorter than one of its columns.
"""

from __future__ import annotations

from typing import Any

from daemonkit.bench.peer import CtxSwitches
from daemonkit.trace.analysis import TYPICAL, analyse
from daemonkit.trace.capture import Capture
from daemonkit.trace.events import Event, Lost, Switch, Wake
from daemonkit.trace.views import timeline_text

CLIENT, PEER, HOG = 100, 200, 300
RUN = 2_000  # ns each end runs per hop


def ping_pong(stalls: list[int]) -> Capture:
    """One round trip per entry of *stalls*: the client runs, wakes the peer and sleeps; the
    peer runs, wakes the client and sleeps; another task holds the CPU for the stall (ns)
    before the client runs again and takes its second timestamp."""
    events: list[Event] = []
    starts, samples = [], []
    t = 1_000_000
    for stall in stalls:
        starts.append(t)
        events.append(Wake(t + RUN // 2, 0, CLIENT, PEER, "peer", 0, "waking"))
        events.append(Switch(t + RUN, 0, CLIENT, "client", "S", PEER, "peer"))
        t += RUN
        events.append(Wake(t + RUN // 2, 0, PEER, CLIENT, "client", 0, "waking"))
        nxt = (HOG, "hog") if stall else (CLIENT, "client")
        events.append(Switch(t + RUN, 0, PEER, "peer", "S", *nxt))
        t += RUN
        if stall:
            events.append(Switch(t + stall, 0, HOG, "hog", "R", CLIENT, "client"))
            t += stall
        t += 100  # the client takes its second timestamp
        samples.append(t - starts[-1])
        t += 50  # the loop's own step between two round trips
    return Capture(
        channel="pipe",
        peer="process",
        cpu="same",
        size=64,
        client_tid=CLIENT,
        peer_tid=PEER,
        client_cpus=[0],
        peer_cpus=[0],
        round_trips=len(stalls),
        start_ns=starts[0],
        end_ns=t,
        samples=samples,
        starts=starts,
        client_rusage=CtxSwitches(len(stalls), 0),
        peer_rusage=CtxSwitches(len(stalls) + 1, 0),
        events=events,
    )


def roles_per_round_trip(tl: dict[str, Any]) -> list[set[str]]:
    lane = tl["lanes"]["0"]
    return [
        {r for s, e, r, _, _ in lane if min(e, start + rt) > max(s, start)}
        for start, rt in zip(tl["starts_ns"], tl["round_trip_ns"], strict=True)
    ]


def test_a_typical_stretch_is_shown_not_the_stalls_beside_it() -> None:
    # Round trips 5 and 6 (from 0) stall; the middle one is 5: the first stretch of three
    # typical round trips from the middle outwards is 7-9, after the stalls.
    stalls = [0] * 5 + [500_000, 500_000] + [0] * 6
    c = ping_pong(stalls)
    tl = analyse(c)["timeline"]
    assert tl["typical"] is True and (tl["first"], tl["round_trips"]) == (7, 3)
    assert tl["round_trip_ns"] == c.samples[7:10]
    lo, hi = TYPICAL
    p50 = sorted(c.samples)[len(c.samples) // 2]
    assert lo * 3 * p50 <= tl["span_ns"] <= hi * 3 * p50
    assert roles_per_round_trip(tl) == [{"client", "peer"}] * 3
    assert [(w["waker"], w["woken"]) for w in tl["wakeups"]] == [
        ("client", "peer"),
        ("peer", "client"),
    ] * 3
    text = timeline_text(analyse(c)).plain
    assert "round trips 8-10 of 13 as the client timed them" in text
    assert "the nearest are shown" not in text


def test_without_a_typical_stretch_the_nearest_is_shown_and_said_to_be() -> None:
    # Every other round trip stalls: any three in a row hold a stall, far beyond 1.5 x three
    # p50 round trips (the p50 is a quick one). Still the client's round trips are shown,
    # whole: in each, both ends ran, the other task too where it stalled.
    stalls = [0, 400_000] * 6 + [0]
    c = ping_pong(stalls)
    tl = analyse(c)["timeline"]
    assert tl["typical"] is False and tl["round_trips"] == 3
    assert all(r >= {"client", "peer"} for r in roles_per_round_trip(tl))
    assert tl["others_share"] > 0.5
    text = timeline_text(analyse(c)).plain
    assert "no 3 consecutive round trips lasted 0.75-1.5 x 3 p50 round trips" in text
    assert "the nearest are shown" in text
    assert "other tasks held these CPUs" in text


def test_a_stretch_where_perf_lost_events_is_avoided_or_said_to_be() -> None:
    # perf lost events inside round trip 6, the middle of 13: no stretch holding it is
    # shown; the first clean typical one from the middle outwards is 7-9.
    c = ping_pong([0] * 13)
    c.events.append(Lost(c.starts[6] + 10, 0, 5))
    c.events.sort(key=lambda e: e.ts)
    tl = analyse(c)["timeline"]
    assert (tl["first"], tl["typical"], tl["events_lost"]) == (7, True, False)
    # Lost in every stretch: the one shown is said to be unsure.
    c = ping_pong([0] * 4)
    c.events.append(Lost(c.starts[1] + 10, 0, 5))
    c.events.append(Lost(c.starts[2] + 10, 0, 5))
    c.events.sort(key=lambda e: e.ts)
    tl = analyse(c)["timeline"]
    assert tl["events_lost"] is True and tl["typical"] is True
    assert "perf lost events in every stretch of 3 round trips" in timeline_text(analyse(c)).plain


def test_a_turn_shorter_than_a_column_still_shows() -> None:
    # 96 µs in 96 columns; the peer runs 100 ns in the middle of column 50, another task
    # holds the other 900 ns of it: the column shows the peer.
    case = {
        "channel": "pipe",
        "peer": "process",
        "cpu": "same",
        "round_trips": 10,
        "latency_ns": {"p50_ns": 32_000},
        "timeline": {
            "round_trips": 3,
            "first": 4,
            "starts_ns": [0, 32_000, 64_000],
            "round_trip_ns": [32_000, 32_000, 32_000],
            "typical": True,
            "typical_range": list(TYPICAL),
            "span_ns": 96_000,
            "others_share": 0.5,
            "lanes": {
                "0": [
                    [0, 50_000, "client", CLIENT, "client"],
                    [50_000, 50_400, "other", HOG, "hog"],
                    [50_400, 50_500, "peer", PEER, "peer"],
                    [50_500, 96_000, "other", HOG, "hog"],
                ]
            },
            "wakeups": [],
        },
    }
    lane = next(ln for ln in timeline_text(case).plain.splitlines() if ln.startswith("cpu0"))
    letters = lane[len("cpu0  ") :]
    assert letters[50] == "P" and letters.count("P") == 1
    assert letters[:50] == "C" * 50 and set(letters[51:]) == {"o"}
