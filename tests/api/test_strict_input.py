"""The edges of the contract at the booking service's own port: strict types, JSON only, size
limits, 405 with Allow, tokens whose claims are not what they claim, passwords as typed, and a
client that goes away. Each answers a clear problem and changes nothing."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from booking.http import MAX_BODY_BYTES
from common.tokens import ISSUER
from tests.api.conftest import event_payload

REGISTER = {"email": "strict@example.com", "password": "correct horse", "name": "Strict"}


async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient, clean_db: Any) -> None:
    import orjson

    raw = orjson.dumps(REGISTER)
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        answer = await client.post(
            "/api/v1/auth/register", content=raw, headers={"Content-Type": content_type}
        )
        assert answer.status_code == 415, (content_type, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "unsupported_media_type"
    assert await clean_db.fetchval("SELECT count(*) FROM users") == 0
    fine = await client.post(
        "/api/v1/auth/register",
        content=raw,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert fine.status_code == 201, fine.text


async def test_a_string_or_a_bool_is_not_a_quantity(
    client: httpx.AsyncClient, published_event: Any, make_user: Any
) -> None:
    event, _ = await published_event()
    _, buyer = await make_user()
    floor = event["zones"][0]["zone_id"]
    for quantity in ("1", True, 1.5):
        answer = await client.post(
            "/api/v1/bookings/reserve",
            json={"event_id": event["event_id"], "zone_id": floor, "quantity": quantity},
            headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 422, (quantity, answer.text)
        assert answer.json()["errors"][0]["field"].startswith("quantity"), answer.text
    queue = event_payload(queue={"enabled": "yes"})
    _, organizer = await make_user("organizer")
    answer = await client.post("/api/v1/events", json=queue, headers=organizer)
    assert answer.status_code == 422, answer.text


async def test_an_oversized_body_is_413_declared_or_streamed(
    client: httpx.AsyncClient, clean_db: Any
) -> None:
    big = b'{"name": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    declared = await client.post(
        "/api/v1/auth/register", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413, declared.text
    assert declared.json()["code"] == "payload_too_large"

    async def chunks() -> Any:  # no Content-Length: the limit applies to what arrives
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await client.post(
        "/api/v1/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413, streamed.text
    assert await clean_db.fetchval("SELECT count(*) FROM users") == 0


async def test_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    answer = await client.put("/api/v1/events")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "method_not_allowed"
    assert answer.headers["allow"] == "GET, HEAD, POST"
    position = await client.post(f"/api/v1/queue/position/{uuid.uuid4()}")
    assert position.status_code == 405
    assert position.headers["allow"] == "DELETE, GET, HEAD"


def _signed(settings: Any, **claims: Any) -> str:
    now = int(datetime.now(UTC).timestamp())
    body = {"role": "customer", "typ": "access", "iss": ISSUER, "iat": now, "exp": now + 60}
    body.update(claims)
    return jwt.encode(body, settings.token_keys.signing_key, algorithm="HS256")


async def test_a_signed_token_with_a_subject_that_is_not_a_user_id_is_401(
    client: httpx.AsyncClient, settings: Any
) -> None:
    for subject in ("not-a-uuid", "' OR 1=1 --", "\u0000", 12):
        token = _signed(settings, sub=subject)
        answer = await client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (subject, answer.text)
        assert answer.json()["code"] == "unauthorized"
    good = _signed(settings, sub=str(uuid.uuid4()))
    answer = await client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {good}"})
    assert answer.status_code == 200, answer.text


async def test_a_password_is_taken_exactly_as_typed(
    client: httpx.AsyncClient, clean_db: Any
) -> None:
    password = "  spaced out  "
    created = await client.post(
        "/api/v1/auth/register",
        json={"email": "spaces@example.com", "password": password, "name": "  Spacey  "},
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Spacey"  # names lose their surrounding blanks
    trimmed = await client.post(
        "/api/v1/auth/login", json={"email": "spaces@example.com", "password": password.strip()}
    )
    assert trimmed.status_code == 401, trimmed.text
    exact = await client.post(
        "/api/v1/auth/login", json={"email": "spaces@example.com", "password": password}
    )
    assert exact.status_code == 200, exact.text


async def test_an_operator_account_on_a_special_use_domain_can_sign_in(
    client: httpx.AsyncClient, clean_db: Any
) -> None:
    from booking.auth import hash_password
    from booking.store.users import insert_user

    # make run's admin is admin@booking-rush.local, a domain registration refuses.
    await insert_user(
        clean_db,
        email="admin@booking-rush.local",
        name="Admin",
        role="admin",
        password_hash=await hash_password("admin-change-me"),
    )
    answer = await client.post(
        "/api/v1/auth/login",
        json={"email": "admin@booking-rush.local", "password": "admin-change-me"},
    )
    assert answer.status_code == 200, answer.text


async def test_a_seated_zone_takes_no_capacity_and_a_blank_name_is_refused(
    client: httpx.AsyncClient, make_user: Any, clean_db: Any
) -> None:
    _, organizer = await make_user("organizer")
    seated = {"name": "Box", "price_minor": 1, "seats": ["A1", "A2"], "capacity": 2}
    for payload in (
        event_payload(zones=[seated]),
        event_payload(name="   "),
        event_payload(zones=[{"name": "Box", "price_minor": 1, "seats": [" A1"]}]),
    ):
        answer = await client.post("/api/v1/events", json=payload, headers=organizer)
        assert answer.status_code == 422, answer.text
    assert await clean_db.fetchval("SELECT count(*) FROM events") == 0


async def test_a_client_that_goes_away_is_not_an_error(app: Any, caplog: Any) -> None:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"email": "gone', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/register",
        "raw_path": b"/api/v1/auth/register",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8081),
        "app": app,
    }
    with caplog.at_level(logging.DEBUG):
        await app(scope, receive, send)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert sent[0]["status"] == 499
