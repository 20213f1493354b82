"""The verifiable pre-queue order: a pure function of the seed and the set of joiners."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections import Counter

from booking.queue.service import estimated_wait_s, shuffled_order
from booking.queue.store import Outflow


def _reference(seed: bytes, joiners: list[str]) -> list[str]:
    """The documented algorithm, written out again independently."""
    order = sorted(set(joiners))
    counter = 0
    for i in range(len(order) - 1, 0, -1):
        while True:
            mac = hmac.new(seed, counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
            value = int.from_bytes(mac[:8], "big")
            if value < 2**64 - 2**64 % (i + 1):
                break
        j = value % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def test_reproducible_from_seed_and_joiners_only() -> None:
    seed = bytes(range(32))
    users = [f"user-{n:03d}" for n in range(50)]
    order = shuffled_order(seed, users)
    assert sorted(order) == sorted(users) and order != sorted(users)
    assert shuffled_order(seed, reversed(users)) == order  # arrival order does not matter
    assert shuffled_order(seed, users + users[:5]) == order  # nor duplicates
    assert order == _reference(seed, users)
    assert shuffled_order(b"another seed", users) != order


def test_small_sets() -> None:
    assert shuffled_order(b"s", []) == []
    assert shuffled_order(b"s", ["only"]) == ["only"]


def test_every_order_is_about_equally_likely() -> None:
    counts = Counter(
        tuple(shuffled_order(n.to_bytes(4, "big"), ["a", "b", "c"])) for n in range(6000)
    )
    assert set(counts) == set(itertools.permutations("abc"))
    assert all(800 < seen < 1200 for seen in counts.values()), counts


def test_wait_estimate_uses_the_measured_rate() -> None:
    measured = Outflow(rate=4.0, release_per_tick=50, tick_ms=1000)
    assert estimated_wait_s(10, measured) == 3
    assert estimated_wait_s(9, measured) <= estimated_wait_s(10, measured)
    unmeasured = Outflow(rate=0.0, release_per_tick=5, tick_ms=500)
    assert estimated_wait_s(20, unmeasured) == 2  # 10 per second configured
