"""Rate limits through the real gateway: 429 with Retry-After and RateLimit-* headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import redis.asyncio as aioredis

from common.tokens import TokenKeys, issue_access_token
from gateway.app import create_app
from gateway.settings import Budget, GatewaySettings
from gateway.ws import CLOSE_POLICY, CLOSE_TRY_AGAIN
from tests.gateway.conftest import ServerThread


def assert_rate_limited(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "rate_limited"
    assert int(answer.headers["retry-after"]) >= 1
    assert int(answer.headers["ratelimit-remaining"]) == 0
    assert int(answer.headers["ratelimit-limit"]) >= 1
    assert int(answer.headers["ratelimit-reset"]) >= 1
    assert answer.headers["x-request-id"]


async def test_burst_beyond_the_ip_limit_gets_429_then_refills(
    start_gateway: Callable[..., Any],
) -> None:
    # A slow refill (1/s) keeps the test independent of how fast a loaded machine answers.
    async with start_gateway(per_ip=Budget(rate=1, burst=10)) as client:
        answers = [await client.get("/api/v1/events") for _ in range(10)]
        assert [a.status_code for a in answers] == [200] * 10
        assert answers[0].headers["ratelimit-limit"] == "10"
        assert answers[0].headers["ratelimit-remaining"] == "9"
        assert answers[-1].headers["ratelimit-remaining"] == "0"
        refused = await client.get("/api/v1/events")
        assert_rate_limited(refused)
        assert refused.headers["retry-after"] == "1"

        await asyncio.sleep(2.05)  # 1/s: two tokens come back
        assert (await client.get("/api/v1/events")).status_code == 200
        assert (await client.get("/api/v1/events")).status_code == 200
        assert_rate_limited(await client.get("/api/v1/events"))

        metrics = (await client.get("/metrics")).text
        assert 'booking_rush_gateway_rate_limited_total{group="default",scope="ip"} 2.0' in metrics


async def test_per_user_limit_is_separate_from_per_ip(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    alice = {"Authorization": f"Bearer {token_for('alice')}"}
    bob = {"Authorization": f"Bearer {token_for('bob')}"}
    async with start_gateway(per_user=Budget(rate=1, burst=3)) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/bookings", headers=alice)).status_code == 200
        refused = await client.get("/api/v1/bookings", headers=alice)
        assert_rate_limited(refused)
        assert "user" in refused.json()["detail"]
        # Same IP, another user, and anonymous public calls still pass.
        assert (await client.get("/api/v1/bookings", headers=bob)).status_code == 200
        assert (await client.get("/api/v1/events")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert (
            'booking_rush_gateway_rate_limited_total{group="default",scope="user"} 1.0' in metrics
        )


async def test_auth_group_has_a_stricter_ip_budget(
    start_gateway: Callable[..., Any], gateway_settings: GatewaySettings
) -> None:
    async with start_gateway(auth_per_ip=Budget(rate=1, burst=10)) as client:
        logins = [
            (await client.post("/api/v1/auth/login", json={"email": "x@y.z"})).status_code
            for _ in range(12)
        ]
        assert logins[:10] == [200] * 10
        assert logins[10:] == [429, 429]
        assert_rate_limited(await client.post("/api/v1/auth/register", json={}))
        # The default group is untouched.
        assert (await client.get("/api/v1/events")).status_code == 200


async def test_redis_down_fails_open(start_gateway: Callable[..., Any]) -> None:
    from tests.gateway.conftest import free_port

    async with start_gateway(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", per_ip=Budget(rate=1, burst=1)
    ) as client:
        answers = [await client.get("/api/v1/events") for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        assert "ratelimit-limit" not in answers[0].headers
        metrics = (await client.get("/metrics")).text
        assert "booking_rush_gateway_rate_limit_fail_open_total 5.0" in metrics


async def test_keys_carry_the_prefix_and_expire(
    start_gateway: Callable[..., Any], gateway_settings: GatewaySettings, redis: aioredis.Redis
) -> None:
    async with start_gateway() as client:
        await client.get("/api/v1/events")
    key = f"{gateway_settings.rate_limit_prefix}ip:default:127.0.0.1"
    assert await redis.exists(key)
    assert 0 < await redis.pttl(key) <= 2_000
    await redis.delete(key)


async def test_concurrent_burst_admits_exactly_the_burst(
    start_gateway: Callable[..., Any],
) -> None:
    async with start_gateway(per_ip=Budget(rate=0.1, burst=10)) as client:
        answers = await asyncio.gather(*(client.get("/api/v1/events") for _ in range(40)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * 10 + [429] * 30


async def test_client_ip_from_trusted_proxy_hops(
    start_gateway: Callable[..., Any], gateway_settings: GatewaySettings, redis: aioredis.Redis
) -> None:
    async with start_gateway(trusted_proxy_hops=1) as client:
        answer = await client.get(
            "/api/v1/events", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
        )
    assert answer.status_code == 200
    seen = {name: value for name, value in answer.json()["headers"]}
    assert seen["x-forwarded-for"] == "6.6.6.6, 203.0.113.7, 127.0.0.1"
    key = f"{gateway_settings.rate_limit_prefix}ip:default:203.0.113.7"
    assert await redis.exists(key)
    await redis.delete(key)


async def test_provider_webhooks_are_never_rate_limited(
    start_gateway: Callable[..., Any],
) -> None:
    """A drop's webhooks all come from the provider's few addresses: throttling them would only
    delay paid bookings, so the webhook route spends no tokens while other routes still do."""
    async with start_gateway(per_ip=Budget(rate=1, burst=2)) as client:
        webhooks = [await client.post("/api/v1/payments/webhook", content=b"{}") for _ in range(6)]
        assert all(answer.status_code != 429 for answer in webhooks), [
            answer.status_code for answer in webhooks
        ]
        assert "ratelimit-limit" not in webhooks[0].headers
        assert [(await client.get("/api/v1/events")).status_code for _ in range(2)] == [200, 200]
        assert_rate_limited(await client.get("/api/v1/events"))


async def test_requests_with_a_bad_token_are_rate_limited_per_ip(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    """A bad token is no way around the per-IP budget: once it is spent, 429 wins over 401."""
    forged = TokenKeys.from_env({"JWT_SECRET": "another-secret-" + "y" * 32}, need_signing=True)
    bad = [
        "not-a-jwt",
        issue_access_token(
            forged, user_id="user-1", role="admin", ttl_s=600, now=datetime.now(UTC)
        ),
        token_for(ttl_s=-3600),  # expired an hour ago
    ]
    async with start_gateway(per_ip=Budget(rate=1, burst=5)) as client:
        answers = [
            await client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"})
            for token in bad * 3
        ]
        assert [a.status_code for a in answers] == [401] * 5 + [429] * 4
        assert answers[0].headers["ratelimit-remaining"] == "4"
        for refused in answers[5:]:
            assert_rate_limited(refused)
        # The flood spent the address's budget: a good token from it waits as well.
        good = {"Authorization": f"Bearer {token_for()}"}
        assert_rate_limited(await client.get("/api/v1/bookings", headers=good))
        metrics = (await client.get("/metrics")).text
        assert 'booking_rush_gateway_rate_limited_total{group="default",scope="ip"} 5.0' in metrics


async def test_websocket_connects_with_a_bad_token_are_rate_limited_per_ip(
    gateway_settings: GatewaySettings,
) -> None:
    app = create_app(replace(gateway_settings, per_ip=Budget(rate=1, burst=3)))
    server = await asyncio.to_thread(ServerThread(app, ws="websockets-sansio").start)
    codes = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                url = f"{server.url}/api/v1/events/ev-1/live?token=not-a-jwt"
                async with session.ws_connect(url) as socket:
                    await socket.receive(timeout=5)
                    codes.append(socket.close_code)
    finally:
        await asyncio.to_thread(server.stop)
    assert codes == [CLOSE_POLICY] * 3 + [CLOSE_TRY_AGAIN] * 2
