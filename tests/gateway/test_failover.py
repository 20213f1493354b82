"""Gateway failover over real loopback sockets: a dead or crashing booking replica costs no
request that may safely go to the other one, a POST without Idempotency-Key is never delivered
twice, and with every replica gone the answer is 503 with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.gateway.conftest import ServerThread, free_port, upstream_app
from tests.gateway.raw_http import read_request


class RawUpstream:
    """A scripted HTTP/1.1 upstream in the test's own loop. `crash=True`: reads each request
    whole, then resets the connection without answering (a replica SIGKILLed mid-request);
    otherwise answers 200 with keep-alive."""

    def __init__(self, name: str, *, crash: bool) -> None:
        self.name = name
        self.crash = crash
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, body = await read_request(reader)
                self.requests.append(head + body)
                if self.crash:
                    writer.transport.abort()
                    return
                payload = b'{"upstream":"' + self.name.encode() + b'"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def seen(self, method: str) -> int:
        return sum(1 for request in self.requests if request.startswith(method.encode() + b" "))


@asynccontextmanager
async def raw_upstream(name: str, *, crash: bool = False) -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(name, crash=crash)
    upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
    try:
        yield upstream
    finally:
        upstream.server.close()


def connect_errors(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('booking_rush_gateway_upstream_errors_total{kind="connect"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no connect error counter")


async def test_no_request_fails_when_one_of_two_upstreams_stops(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    first = await asyncio.to_thread(ServerThread(upstream_app("booking-1")).start)
    second = await asyncio.to_thread(ServerThread(upstream_app("booking-2")).start)
    headers = {"Authorization": f"Bearer {token_for()}"}
    try:
        async with start_gateway(upstreams=(first.url, second.url)) as client:
            # Both pools hold keep-alive connections before the first replica goes away.
            warm = await asyncio.gather(*(client.get("/api/v1/events") for _ in range(8)))
            assert {answer.json()["upstream"] for answer in warm} == {"booking-1", "booking-2"}

            async def load() -> list[httpx.Response]:
                answers = []
                for _ in range(30):
                    answers.append(await client.get("/api/v1/events"))
                    await asyncio.sleep(0.005)
                return answers

            during, _ = await asyncio.gather(load(), asyncio.to_thread(first.stop))
            await asyncio.sleep(0.2)
            after = [
                await client.post("/api/v1/bookings/reserve", json={"n": i}, headers=headers)
                for i in range(10)
            ] + [await client.get("/api/v1/events") for _ in range(10)]
            for answer in during + after:
                assert answer.status_code == 200, answer.text
            assert {answer.json()["upstream"] for answer in after} == {"booking-2"}
            # The refused replica is skipped for a while, not tried again on every request.
            assert connect_errors((await client.get("/metrics")).text) <= 2
    finally:
        first.stop()
        second.stop()


async def test_dead_upstream_is_skipped_for_a_while(start_gateway: Callable[..., Any]) -> None:
    async with raw_upstream("good") as good:
        dead = f"http://127.0.0.1:{free_port()}"
        async with start_gateway(upstreams=(dead, good.url)) as client:
            for _ in range(10):
                answer = await client.get("/api/v1/events")
                assert answer.status_code == 200 and answer.json()["upstream"] == "good"
            assert connect_errors((await client.get("/metrics")).text) == 1.0


async def test_reset_before_any_answer_retries_only_what_is_safe_to_repeat(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    async with raw_upstream("crasher", crash=True) as crasher, raw_upstream("good") as good:
        async with start_gateway(upstreams=(crasher.url, good.url)) as client:
            # Idempotent methods go to the other replica: no failure at all.
            for _ in range(4):
                answer = await client.get("/api/v1/events", headers=headers)
                assert answer.status_code == 200 and answer.json()["upstream"] == "good"
            assert crasher.seen("GET") >= 1  # the crasher did get (and drop) some of them

            # A POST without Idempotency-Key that reached the crasher is not sent again.
            outcomes = []
            for i in range(4):
                crashed, served = crasher.seen("POST"), good.seen("POST")
                answer = await client.post(
                    "/api/v1/bookings/reserve", json={"n": i}, headers=headers
                )
                delivered = (crasher.seen("POST") - crashed) + (good.seen("POST") - served)
                assert delivered == 1, "a POST without Idempotency-Key was delivered twice"
                if crasher.seen("POST") > crashed:
                    assert answer.status_code == 502
                    assert answer.headers["content-type"] == "application/problem+json"
                    outcomes.append("crashed")
                else:
                    assert answer.status_code == 200 and answer.json()["upstream"] == "good"
                    outcomes.append("served")
            assert "crashed" in outcomes  # round-robin sent some to the crasher

            # With an Idempotency-Key the booking service replays by key: retried, never lost.
            for i in range(4):
                answer = await client.post(
                    "/api/v1/bookings/reserve",
                    json={"n": i},
                    headers={**headers, "Idempotency-Key": f"key-{i}"},
                )
                assert answer.status_code == 200 and answer.json()["upstream"] == "good"
            keyed = [r for r in crasher.requests if b"idempotency-key" in r.lower()]
            assert keyed, "no keyed POST reached the crasher, so no retry was exercised"
            metrics = (await client.get("/metrics")).text
            assert 'booking_rush_gateway_upstream_errors_total{kind="retried"}' in metrics


async def test_every_upstream_dead_gives_503_with_retry_after(
    start_gateway: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    dead = tuple(f"http://127.0.0.1:{free_port()}" for _ in range(2))
    headers = {"Authorization": f"Bearer {token_for()}"}
    async with start_gateway(upstreams=dead) as client:
        for _ in range(3):
            for answer in (
                await client.get("/api/v1/events"),
                await client.post("/api/v1/bookings/reserve", json={}, headers=headers),
            ):
                assert answer.status_code == 503
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"] == "service_unavailable"
                assert int(answer.headers["retry-after"]) >= 1


async def test_upstream_back_after_an_outage_is_used_again(
    start_gateway: Callable[..., Any],
) -> None:
    port = free_port()
    async with start_gateway(upstreams=(f"http://127.0.0.1:{port}",)) as client:
        assert (await client.get("/api/v1/events")).status_code == 503
        server = await asyncio.start_server(
            RawUpstream("back", crash=False)._serve, "127.0.0.1", port
        )
        try:
            # Marked down, but the only one: tried again at once rather than refused for 1 s.
            answer = await client.get("/api/v1/events")
            assert answer.status_code == 200 and answer.json()["upstream"] == "back"
        finally:
            server.close()
