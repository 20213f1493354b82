from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from booking.app import create_app
from booking.settings import Settings
from tests.api.conftest import register_and_login

PROBLEM = "application/problem+json"


async def test_register_login_me(client: httpx.AsyncClient) -> None:
    user = await register_and_login(client, "ada@example.com")
    assert user["role"] == "customer"
    assert user["token_type"] == "Bearer"
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {user['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json() == {
        "user_id": user["user_id"],
        "email": "ada@example.com",
        "name": "Buyer",
        "role": "customer",
    }
    claims = jwt.decode(user["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user["user_id"] and claims["role"] == "customer"


async def test_password_is_stored_as_slow_hash(client: httpx.AsyncClient, clean_db: Any) -> None:
    await register_and_login(client, "hash@example.com", "plain-text-password")
    stored = await clean_db.fetchval("SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$")
    assert "plain-text-password" not in stored


async def test_email_taken_is_409_and_case_insensitive(client: httpx.AsyncClient) -> None:
    await register_and_login(client, "dup@example.com")
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": "DUP@example.com", "password": "another-password", "name": "X"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["code"] == "email_taken"


async def test_bad_register_input_names_fields(client: httpx.AsyncClient, clean_db: Any) -> None:
    bad = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "short", "name": ""}
    )
    assert bad.status_code == 422
    body = bad.json()
    assert body["code"] == "invalid_request"
    assert {e["field"] for e in body["errors"]} == {"email", "password", "name"}
    assert await clean_db.fetchval("SELECT count(*) FROM users") == 0


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    bad = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_request"


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    await register_and_login(client, "bob@example.com")
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": "wrong-password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_refresh_rotates_and_a_used_token_stops_working(client: httpx.AsyncClient) -> None:
    user = await register_and_login(client, "rot@example.com")
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert first.status_code == 200
    pair = first.json()
    assert pair["refresh_token"] != user["refresh_token"]
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert me.status_code == 200

    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}
    )
    assert replay.status_code == 401
    assert replay.json()["code"] == "unauthorized"
    # The replay revoked the family: the newer token is dead too.
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert after.status_code == 401


async def test_concurrent_refresh_with_one_token_succeeds_once(client: httpx.AsyncClient) -> None:
    user = await register_and_login(client, "race@example.com")
    answers = await asyncio.gather(
        *[
            client.post("/api/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
            for _ in range(5)
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401, 401]


async def test_logout_revokes_the_refresh_token_and_its_family(
    client: httpx.AsyncClient,
) -> None:
    user = await register_and_login(client, "leaving@example.com")
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}
    )
    assert rotated.status_code == 200
    current = rotated.json()["refresh_token"]
    other = await register_and_login(client, "staying@example.com")

    out = await client.post("/api/v1/auth/logout", json={"refresh_token": current})
    assert out.status_code == 204 and out.content == b""
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": current})
    assert after.status_code == 401 and after.json()["code"] == "unauthorized"
    # Signing out twice, or with a token nobody issued, is the same quiet 204.
    again = await client.post("/api/v1/auth/logout", json={"refresh_token": current})
    assert again.status_code == 204
    unknown = await client.post("/api/v1/auth/logout", json={"refresh_token": "never-issued"})
    assert unknown.status_code == 204
    # Another user's sign-in is untouched.
    theirs = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert theirs.status_code == 200
    bad = await client.post("/api/v1/auth/logout", json={"refresh_token": ""})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


async def test_config_tells_the_pages_the_payment_provider(
    client: httpx.AsyncClient, service_env: dict[str, str], clean_db: Any
) -> None:
    answer = await client.get("/api/v1/config")
    assert answer.status_code == 200
    assert answer.json() == {
        "payment_provider": "mock",
        "test_outcomes": ["succeed", "decline", "no_answer"],
    }
    # With a real provider there is nothing to script: the checkout shows no outcome picker.
    stripe = create_app(
        Settings.from_env(
            {
                **service_env,
                "PAYMENT_PROVIDER": "stripe",
                "STRIPE_SECRET_KEY": "sk_test_unused",
                "STRIPE_WEBHOOK_SECRET": "whsec_unused",
            }
        )
    )
    async with (
        stripe.router.lifespan_context(stripe),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stripe), base_url="http://booking"
        ) as http,
    ):
        answer = await http.get("/api/v1/config")
    assert answer.json() == {"payment_provider": "stripe", "test_outcomes": []}


async def test_unknown_refresh_token(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert answer.status_code == 401


async def test_me_rejects_forged_expired_and_none_tokens(
    client: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    user = await register_and_login(client, "edge@example.com")
    expired = token_for(user["user_id"], ttl_s=-60)
    forged = jwt.encode(
        {
            "sub": user["user_id"],
            "role": "admin",
            "typ": "access",
            "iss": "booking-rush",
            "iat": 1,
            "exp": 4_000_000_000,
        },
        "not-the-secret-" + "z" * 40,
        algorithm="HS256",
    )
    none_alg = jwt.encode(
        {
            "sub": user["user_id"],
            "role": "admin",
            "typ": "access",
            "iss": "booking-rush",
            "iat": 1,
            "exp": 4_000_000_000,
        },
        None,  # type: ignore[arg-type]  # PyJWT's annotation leaves out None, which "none" takes
        algorithm="none",
    )
    for token in (expired, forged, none_alg, "garbage"):
        answer = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token
        assert answer.headers["content-type"] == PROBLEM
    bare = await client.get("/api/v1/auth/me", headers={"X-User-ID": user["user_id"]})
    assert bare.status_code == 401


async def test_request_id_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/api/v1/health", headers={"X-Request-ID": "bad id!"})
    assert generated.headers["x-request-id"] not in ("bad id!", "")


async def test_ready_and_metrics(client: httpx.AsyncClient) -> None:
    ready = await client.get("/api/v1/ready")
    assert ready.status_code == 200
    assert ready.json()["dependencies"] == {"redis": "up", "postgres": "up"}
    await client.get("/api/v1/health")
    metrics = await client.get("/metrics")
    assert 'booking_rush_http_requests_total{method="GET",route="/health"' in metrics.text
