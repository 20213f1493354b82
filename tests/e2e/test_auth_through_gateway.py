"""Issue acceptance: register -> login -> me through the gateway; forged and expired tokens get
401 problem+json; hammering login from one IP gets 429 with Retry-After."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from tests.e2e.conftest import LiveStack


async def test_health_ready_and_metrics(gateway: httpx.AsyncClient, live_stack: LiveStack) -> None:
    assert (await gateway.get("/health")).status_code == 200
    ready = await gateway.get("/ready")
    assert ready.status_code == 200, ready.text
    async with httpx.AsyncClient() as direct:
        booking_ready = await direct.get(live_stack.booking_url + "/api/v1/ready")
        assert booking_ready.status_code == 200
        metrics = await direct.get(live_stack.gateway_url + "/metrics")
        assert "booking_rush_gateway_requests_total" in metrics.text


async def test_register_login_me_and_bad_tokens(
    gateway: httpx.AsyncClient, live_stack: LiveStack
) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    created = await gateway.post(
        "/auth/register", json={"email": email, "password": "long enough pw", "name": "E"}
    )
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"]
    login = await gateway.post("/auth/login", json={"email": email, "password": "long enough pw"})
    assert login.status_code == 200, login.text
    tokens = login.json()
    me = await gateway.get(
        "/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["email"] == email

    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    expired = jwt.encode(
        {**claims, "exp": int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())},
        live_stack.env["JWT_SECRET"],
        algorithm="HS256",
    )
    forged = jwt.encode({**claims, "role": "admin"}, "x" * 48, algorithm="HS256")
    for token in (expired, forged, "not.a.jwt"):
        answer = await gateway.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "unauthorized"
    # A client cannot claim an identity with a bare header, at the gateway or past it.
    bare = await gateway.get("/auth/me", headers={"X-User-ID": claims["sub"]})
    assert bare.status_code == 401
    async with httpx.AsyncClient() as direct:
        behind = await direct.get(
            live_stack.booking_url + "/api/v1/auth/me", headers={"X-User-ID": claims["sub"]}
        )
        assert behind.status_code == 401


async def test_hammering_login_from_one_ip_is_rate_limited(gateway: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *[
            gateway.post(
                "/auth/login", json={"email": "nobody@example.com", "password": "whatever-pw"}
            )
            for _ in range(40)
        ]
    )
    limited = [a for a in answers if a.status_code == 429]
    assert limited, sorted(a.status_code for a in answers)
    assert {a.status_code for a in answers} <= {401, 429}
    for answer in limited:
        assert answer.json()["code"] == "rate_limited"
        assert int(answer.headers["retry-after"]) >= 1
        assert "ratelimit-limit" in answer.headers
