"""The gateway's rate limits on a Redis Cluster (REDIS_CLUSTER=1): the per-IP and per-user
buckets live on different shards, each is checked by a call of its own, and the answers are the
ones a single Redis gives: 429 from the right bucket, and a user's bucket uncharged when the IP
bucket refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from gateway.ratelimit import ip_key, user_key
from gateway.settings import Budget
from tests.gateway.test_rate_limit import assert_rate_limited
from tests.on_cluster.resharding import owner_port


async def test_ip_and_user_buckets_on_the_cluster(
    start_gateway: Callable[..., Any], token_for: Callable[..., str], redis_cluster: Any
) -> None:
    prefix = f"rl-cluster-{id(object())}:"
    ip_owner = owner_port(redis_cluster.url, ip_key(prefix, "default", "127.0.0.1"))
    # users whose buckets sit on another shard than the IP's: two calls, two nodes
    alice_id, bob_id = _two_elsewhere(redis_cluster.url, prefix, ip_owner)
    alice = {"Authorization": f"Bearer {token_for(alice_id)}"}
    bob = {"Authorization": f"Bearer {token_for(bob_id)}"}
    async with start_gateway(
        redis_url=redis_cluster.url,
        redis_cluster=True,
        rate_limit_prefix=prefix,
        per_ip=Budget(rate=0.5, burst=6),
        per_user=Budget(rate=0.5, burst=3),
    ) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/bookings", headers=alice)).status_code == 200
        refused = await client.get("/api/v1/bookings", headers=alice)
        assert_rate_limited(refused)
        assert "user" in refused.json()["detail"]

        # the IP bucket (6) took the 3 allowed and the 1 the user bucket refused: 2 left
        assert (await client.get("/api/v1/events")).status_code == 200
        assert (await client.get("/api/v1/events")).status_code == 200
        by_ip = await client.get("/api/v1/events")
        assert_rate_limited(by_ip)
        assert "user" not in by_ip.json()["detail"]

        # refused by the IP bucket: bob's own bucket is not charged (it never gets a key)
        by_ip_for_bob = await client.get("/api/v1/bookings", headers=bob)
        assert_rate_limited(by_ip_for_bob)
        assert "user" not in by_ip_for_bob.json()["detail"]

    seed = redis.RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        assert seed.exists(ip_key(prefix, "default", "127.0.0.1"))
        assert seed.exists(user_key(prefix, alice_id))  # on a shard of its own
        assert not seed.exists(user_key(prefix, bob_id))
    finally:
        seed.close()


def _two_elsewhere(seed_url: str, prefix: str, ip_owner: int) -> tuple[str, str]:
    found = [
        name
        for name in (f"user-{n}" for n in range(50))
        if owner_port(seed_url, user_key(prefix, name)) != ip_owner
    ]
    return found[0], found[1]
