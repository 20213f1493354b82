"""Shared helpers of the Lua tests: loading events, inventory invariants, queue passes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any, cast

import orjson
from redis.asyncio.cluster import RedisCluster

from booking.inventory.keys import event_keys
from booking.inventory.records import EventSpec, ZoneSpec
from booking.inventory.scripts import Scripts
from common.redis_client import RedisClient

# Six hours, longer than any test session: NOW is taken once, when the suite is collected, and
# sweepers of other suites share this Redis (the package-scoped live stack of tests/on_cluster
# runs seat-release on the cluster) and sweep every live event with the real clock. With ten
# minutes, a test reached more than ten minutes into the suite had its holds expired under it
# (the resharding storm: 411 reserves made, 1 still held).
TTL_MS = 6 * 3600 * 1000
# Every seat of a zone is in exactly one of these (inv `<zone>:<counter>`).
COUNTERS = ("available", "held", "sold", "suspended", "withheld")
# Real time (whole seconds), not a fixed past date: holds dated in the past would be those
# sweepers' to expire.
NOW = time.time_ns() // 1_000_000_000 * 1000


def seat_labels(count: int, row: str = "A") -> tuple[str, ...]:
    return tuple(f"{row}{n}" for n in range(1, count + 1))


async def load_event(
    scripts: Scripts,
    event_id: str,
    *,
    ga: int = 0,
    seats: int = 0,
    price: int = 2500,
    **meta: Any,
) -> None:
    """Publish an event with a GA zone `ga` (capacity `ga`) and/or a seated zone `seated`."""
    zones = []
    if ga:
        zones.append(ZoneSpec("ga", price, capacity=ga))
    if seats:
        zones.append(ZoneSpec("seated", price * 2, seats=seat_labels(seats)))
    assert await scripts.load_event(EventSpec(event_id, zones=tuple(zones), **meta))


async def reserve(scripts: Scripts, event_id: str, user: str = "u1", **kwargs: Any) -> Any:
    kwargs.setdefault("booking_id", str(uuid.uuid4()))
    kwargs.setdefault("zone_id", "seated" if "seats" in kwargs else "ga")
    kwargs.setdefault("ttl_ms", TTL_MS)
    kwargs.setdefault("now_ms", NOW)
    return await scripts.reserve(event_id, user_id=user, **kwargs)


async def add_pass(
    redis: RedisClient, event_id: str, pass_id: str, user: str, expires_ms: int
) -> None:
    keys = event_keys(event_id)
    await redis.hset(keys.passes, pass_id, f"{user}|{expires_ms}")
    await redis.zadd(keys.passes_active, {pass_id: expires_ms})


async def _hash(redis: RedisClient, key: str) -> dict[str, str]:
    return cast(dict[str, str], await redis.hgetall(key))  # decode_responses=True


async def assert_consistent(redis: RedisClient, event_id: str) -> dict[str, Any]:
    """Check every inventory invariant of one event from the raw Redis state; return it."""
    keys = event_keys(event_id)
    inv = {k: int(v) for k, v in (await _hash(redis, keys.inv)).items() if not k.endswith(":kind")}
    seats = await _hash(redis, keys.seats)
    holds = {k: orjson.loads(v) for k, v in (await _hash(redis, keys.holds)).items()}
    expiry = set(await redis.zrange(keys.expiry, 0, -1))
    users = {k: int(v) for k, v in (await _hash(redis, keys.users)).items()}

    zones = {field.rpartition(":")[0] for field in inv} - {"total"}
    held: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    per_user: Counter[str] = Counter()
    owners: dict[str, str] = {}
    for booking_id, hold in holds.items():
        if hold["status"] not in ("RESERVED", "CONFIRMED"):
            continue
        (held if hold["status"] == "RESERVED" else sold)[hold["zone"]] += hold["qty"]
        per_user[hold["user"]] += hold["qty"]
        for label in hold.get("seats", ()):
            field = f"{hold['zone']}:{label}"
            assert field not in owners, f"seat {field} in two live bookings"
            owners[field] = booking_id
            assert seats[field] == booking_id
    for name in ("available", "held", "sold", "suspended", "withheld"):
        assert inv.get(f"total:{name}", 0) == sum(inv.get(f"{z}:{name}", 0) for z in zones)
    for zone in zones:
        counts = [inv.get(f"{zone}:{n}", 0) for n in COUNTERS]
        assert min(counts) >= 0, (zone, counts)
        assert sum(counts) == inv[f"{zone}:capacity"], (zone, counts)
        assert 0 <= inv.get(f"{zone}:offered", 0) <= inv.get(f"{zone}:withheld", 0), zone
        assert inv[f"{zone}:held"] == held[zone]
        assert inv[f"{zone}:sold"] == sold[zone]
    suspended_seats = Counter(f.partition(":")[0] for f, owner in seats.items() if owner == "S")
    for zone, count in suspended_seats.items():
        assert inv[f"{zone}:suspended"] == count
    withheld_seats = Counter(f.partition(":")[0] for f, owner in seats.items() if owner == "W")
    for zone, count in withheld_seats.items():
        assert inv[f"{zone}:withheld"] == count
    taken = {field for field, owner in seats.items() if owner not in ("", "S", "W")}
    assert taken == set(owners)
    assert expiry == {b for b, h in holds.items() if h["status"] == "RESERVED"}
    assert users == {u: n for u, n in per_user.items() if n > 0}
    return {"inv": inv, "seats": seats, "holds": holds, "users": users}


async def subscribe_feed(client: Any, channel: str) -> Any:
    """A pub/sub listening on `channel` the way the service does: sharded on a cluster."""
    pubsub = client.pubsub()
    if isinstance(client, RedisCluster):
        await pubsub.ssubscribe(channel)
    else:
        await pubsub.subscribe(channel)
    return pubsub


async def next_message(pubsub: Any, wait_s: float = 5.0) -> str | None:
    """The next published payload, or None after `wait_s` (skips subscribe confirmations,
    for which redis-py's get_message answers None at once)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    sharded = hasattr(pubsub, "get_sharded_message")
    while (left := deadline - loop.time()) > 0:
        if sharded:
            message = await pubsub.get_sharded_message(
                ignore_subscribe_messages=True, timeout=min(left, 0.2)
            )
        else:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            return message["data"]
    return None
