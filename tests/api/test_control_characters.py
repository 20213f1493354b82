"""Control characters (a NUL above all: PostgreSQL refuses it) in a text field are a 422 naming
the field, never a 500, and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx


def _names_field(answer: httpx.Response, field: str) -> bool:
    body = answer.json()
    return body["code"] == "invalid_request" and field in str(body.get("errors") or body)


async def test_a_nul_in_a_name_is_refused_at_register(
    client: httpx.AsyncClient, clean_db: Any
) -> None:
    for name in ("Bad\u0000Name", "Tab\there", "bell\u0007"):
        answer = await client.post(
            "/api/v1/auth/register",
            json={"email": "nul@example.com", "password": "correct horse", "name": name},
        )
        assert answer.status_code == 422, answer.text
        assert _names_field(answer, "name"), answer.text
    assert await clean_db.fetchval("SELECT count(*) FROM users") == 0


async def test_a_nul_in_an_event_or_seat_label_is_refused(
    client: httpx.AsyncClient, token_for: Any, clean_db: Any
) -> None:
    import uuid

    admin = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()), 'admin')}"}
    event = {
        "name": "Night",
        "venue": "Hall",
        "starts_at": "2031-01-01T20:00:00Z",
        "sale_starts_at": "2021-01-01T10:00:00Z",
        "max_per_user": 4,
        "currency": "EUR",
        "zones": [{"name": "Floor", "capacity": 10, "price_minor": 100}],
    }
    for field, broken in (
        ("name", {**event, "name": "Ni\u0000ght"}),
        ("venue", {**event, "venue": "Ha\u0000ll"}),
        (
            "seats",
            {**event, "zones": [{"name": "A", "seats": ["A1", "A\u00002"], "price_minor": 1}]},
        ),
    ):
        answer = await client.post("/api/v1/events", headers=admin, json=broken)
        assert answer.status_code == 422, answer.text
        assert _names_field(answer, field), answer.text
    assert await clean_db.fetchval("SELECT count(*) FROM events") == 0
