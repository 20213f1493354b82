"""The drop simulation (`loadtests/simulate.py`), small and deterministic: 20,000 buyers on the
committed costs.json. Pure Python, no servers; a few seconds in all."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from loadtests.simulate import COSTS, Config, simulate

SMALL: dict[str, Any] = {
    "buyers": 20_000,
    "seats": 1_000,
    "gateways": 4,
    "booking": 4,
    "shards": 2,
    "seed": 7,
}


@pytest.fixture(scope="module")
def costs() -> dict[str, Any]:
    return dict(json.loads(COSTS.read_text()))


@pytest.fixture(scope="module")
def small(costs: dict[str, Any]) -> dict[str, Any]:
    return simulate(Config(**SMALL), costs)


def test_same_seed_same_result(costs: dict[str, Any], small: dict[str, Any]) -> None:
    assert simulate(Config(**SMALL), costs) == small


def test_seats_and_buyers_add_up(small: dict[str, Any]) -> None:
    out = small["outcome"]
    assert out["sold"] <= out["seats"]
    assert out["sold"] + out["held_at_end"] + out["available_at_end"] == out["seats"]
    assert out["join"] == out["stream"] == SMALL["buyers"]
    # every admitted buyer is counted once: one pass, one delivery, one reserve each
    assert out["admitted"] == out["reserve"] + out["passes_lapsed_unused"]
    assert small["latency_s"]["pass delivery (admitted -> pass)"]["n"] == out["admitted"]
    assert small["latency_s"]["queue wait (join -> pass)"]["n"] == out["admitted"]
    assert out["admitted"] <= SMALL["buyers"]
    # each reserve ends once: sold out, a hold paid (bought or declined) or lapsed
    assert out["reserve"] == (
        out.get("reserve_sold_out", 0)
        + out.get("bought", 0)
        + out.get("declined", 0)
        + out.get("lapsed", 0)
    )
    assert out["bought"] > 0


def test_utilisation_is_a_share(small: dict[str, Any]) -> None:
    for row in small["stations"].values():
        assert 0.0 <= row["peak_1s_utilisation"] <= 1.0
        for window in ("join storm", "the minute after it"):
            assert 0.0 <= row[window]["utilisation_mean"] <= row[window]["utilisation_max"] <= 1.0
    for shard in small["shards"]:
        assert 0.0 <= shard["peak_1s_utilisation"] <= 1.0


def test_more_booking_processes_never_wait_longer(costs: dict[str, Any]) -> None:
    # 20,000 joins in 5 s, seats for everyone, nobody abandons: the booking processes are what
    # the buyers wait for until there are enough of them
    base: dict[str, Any] = {
        **SMALL,
        "join_window": 5.0,
        "seats": 100_000,
        "gateways": 16,
        "shards": 4,
        "release_per_tick": 5000,
        "max_concurrent": 100_000,
        "leave_share": 0.0,
        "lapse_share": 0.0,
        "decline_share": 0.0,
    }
    waits = []
    for booking in (1, 2, 4, 8):
        wait = simulate(Config(**{**base, "booking": booking}), costs)["latency_s"]
        waits.append(
            (wait["queue wait (join -> pass)"]["p50"], wait["queue wait (join -> pass)"]["p95"])
        )
    for fewer, more in itertools.pairwise(waits):
        assert more[0] <= fewer[0] and more[1] <= fewer[1], waits
    assert waits[0][1] > waits[-1][1]  # and the first is a real bottleneck


def test_an_overloaded_shard_is_reported_first(costs: dict[str, Any]) -> None:
    slow = json.loads(json.dumps(costs))
    for kind in slow["kinds"].values():  # Redis 100x slower: the event's shard is over 1
        cpu = kind["cpu_us_per_request"]
        cpu["redis"] = cpu.get("redis", 0.0) * 100
    result = simulate(Config(**{**SMALL, "gateways": 16, "booking": 16}), slow)
    first = result["saturates_first"]
    assert first is not None
    assert first["station"] == "redis event shard"
    assert result["stations"]["redis event shard"]["join storm"]["offered_max"] > 1.0
