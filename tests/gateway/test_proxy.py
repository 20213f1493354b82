"""The proxy over real sockets: streaming without buffering, forwarding rules, failures."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from tests.gateway.conftest import (
    SSE_CHUNKS,
    SSE_GAP_S,
    ServerThread,
    free_port,
    seen_headers,
    upstream_app,
)


async def test_sse_chunks_arrive_one_by_one_before_the_upstream_finishes(
    gateway: httpx.AsyncClient,
) -> None:
    arrivals: list[tuple[float, dict[str, Any]]] = []
    url = "/api/v1/events/ev-1/availability/stream"
    async with gateway.stream("GET", url) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for chunk in answer.aiter_raw():
            received = time.time()
            for line in chunk.decode().splitlines():
                if line.startswith("data: "):
                    arrivals.append((received, orjson.loads(line[6:])))
    assert [event["i"] for _, event in arrivals] == list(range(SSE_CHUNKS))
    last_sent = arrivals[-1][1]["sent"]
    for received, event in arrivals[:-1]:
        # Each chunk reached the client well before the upstream even produced the last one.
        assert received - event["sent"] < SSE_GAP_S / 2
        assert received < last_sent
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert all(gap > SSE_GAP_S * 0.7 for gap in gaps)


async def test_client_disconnect_closes_the_stream(gateway: httpx.AsyncClient) -> None:
    url = "/api/v1/events/ev-2/availability/stream"
    async with gateway.stream("GET", url) as answer:
        async for _chunk in answer.aiter_raw():
            break  # leave after the first event
    # The gateway keeps serving (the aborted relay released its upstream connection).
    assert (await gateway.get("/api/v1/events")).status_code == 200


async def test_method_path_query_and_body_are_forwarded(
    gateway: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    answer = await gateway.patch(
        "/api/v1/events/ev%2F1/queue?a=1&b=x%20y&b=2",
        content=b'{"max_concurrent": 5}',
        headers={"Authorization": f"Bearer {token_for()}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["method"] == "PATCH"
    assert seen["raw_path"] == "/api/v1/events/ev%2F1/queue"
    assert seen["query"] == "a=1&b=x%20y&b=2"
    assert seen["body"] == '{"max_concurrent": 5}'
    assert seen_headers(answer)["content-type"] == ["application/json"]


async def test_forgeable_headers_are_stripped_and_forwarding_headers_set(
    gateway: httpx.AsyncClient,
) -> None:
    answer = await gateway.get(
        "/api/v1/events",
        headers={
            "X-User-ID": "admin-1",
            "X-User-Role": "admin",
            "X-Forwarded-User": "admin-1",
            "X-Forwarded-For": "6.6.6.6",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "X-Custom": "kept",
        },
    )
    seen = seen_headers(answer)
    for forged in ("x-user-id", "x-user-role", "x-forwarded-user", "x-secret-hop"):
        assert forged not in seen
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-custom"] == ["kept"]


async def test_upstream_status_and_repeated_headers_pass_through(
    gateway: httpx.AsyncClient,
) -> None:
    answer = await gateway.get("/api/v1/events?status=409&cookies=1")
    assert answer.status_code == 409
    assert answer.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert int(answer.headers["content-length"]) == len(answer.content)


async def test_large_body_is_refused_with_413(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(max_body_bytes=1024) as client:
        answer = await client.post("/api/v1/auth/login", content=b"x" * 1025)
        assert answer.status_code == 413
        assert answer.json()["code"] == "payload_too_large"

        async def chunks() -> Any:
            for _ in range(3):
                yield b"y" * 600

        chunked = await client.post("/api/v1/auth/login", content=chunks())
        assert chunked.status_code == 413
        fits = await client.post("/api/v1/auth/login", content=b"z" * 1024)
        assert fits.status_code == 200 and fits.json()["body"] == "z" * 1024


async def test_upstream_down_gives_503_problem(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(upstreams=(f"http://127.0.0.1:{free_port()}",)) as client:
        answer = await client.get("/api/v1/events")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "service_unavailable"
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.headers["x-request-id"]
        metrics = (await client.get("/metrics")).text
        assert 'booking_rush_gateway_upstream_errors_total{kind="connect"} 1.0' in metrics


async def test_upstream_timeout_gives_503(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    async with start_gateway(upstream_timeout_s=0.3) as client:
        headers = {"Authorization": f"Bearer {token_for()}"}
        started = time.monotonic()
        answer = await client.get("/api/v1/slow?s=2", headers=headers)
        assert answer.status_code == 503
        assert answer.json()["code"] == "service_unavailable"
        assert time.monotonic() - started < 1.5


async def test_round_robin_and_failover(start_gateway: Callable[..., Any]) -> None:
    second = await asyncio.to_thread(ServerThread(upstream_app("booking-2")).start)
    try:
        dead = f"http://127.0.0.1:{free_port()}"
        async with start_gateway(upstreams=(dead, second.url)) as client:
            names = [(await client.get("/api/v1/events")).json()["upstream"] for _ in range(4)]
            assert names == ["booking-2"] * 4  # the dead one is skipped, nothing fails
    finally:
        second.stop()


async def test_requests_spread_over_upstreams(
    start_gateway: Callable[..., Any], upstream: ServerThread
) -> None:
    second = await asyncio.to_thread(ServerThread(upstream_app("booking-2")).start)
    try:
        async with start_gateway(upstreams=(upstream.url, second.url)) as client:
            names = [(await client.get("/api/v1/events")).json()["upstream"] for _ in range(4)]
            assert sorted(names) == ["booking-1", "booking-1", "booking-2", "booking-2"]
    finally:
        second.stop()
