"""The inventory check both load tools apply to the admin stats: it passes a consistent zone
and names each way a zone can break."""

from __future__ import annotations

from typing import Any

from loadtests.target import zone_breaks


def _stats(available: int, held: int, sold: int, pg_held: int, pg_sold: int) -> dict[str, Any]:
    zone = {
        "zone_id": "0f5a1c2e-0000-0000-0000-000000000000",
        "capacity": 10,
        "available": available,
        "held": held,
        "sold": sold,
        "postgres": {"held": pg_held, "sold": pg_sold},
    }
    return {"zones": [zone]}


def test_a_consistent_zone_passes() -> None:
    assert zone_breaks(_stats(4, 3, 3, 3, 3)) == []


def test_lost_seats_oversell_and_empty_stats_are_named() -> None:
    assert "!= capacity" in zone_breaks(_stats(5, 3, 3, 3, 3))[0]
    assert any("< 0" in p for p in zone_breaks(_stats(-1, 6, 5, 6, 5)))
    assert any("PostgreSQL" in p for p in zone_breaks(_stats(4, 3, 3, 6, 6)))
    assert zone_breaks({"zones": []}) == ["the stats list no zones"]
