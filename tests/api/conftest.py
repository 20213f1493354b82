"""API tests drive the booking app in-process (httpx ASGITransport) against the real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from booking.app import create_app
from booking.settings import Settings
from common.tokens import issue_access_token


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str]) -> Settings:
    return Settings.from_env({**service_env, "HOLD_TTL_S": "600"})


@pytest.fixture
async def app(settings: Settings, clean_db: Any) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://booking") as http:
        yield http


@pytest.fixture
def token_for(settings: Settings) -> Any:
    """A signed access token for a user id and role (users need not exist for most routes)."""

    def make(user_id: str, role: str = "customer", ttl_s: int = 600) -> str:
        return issue_access_token(
            settings.token_keys, user_id=user_id, role=role, ttl_s=ttl_s, now=datetime.now(UTC)
        )

    return make


async def register_and_login(
    client: httpx.AsyncClient, email: str, password: str = "correct horse battery"
) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": "Buyer"}
    )
    assert created.status_code == 201, created.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {**created.json(), **login.json()}


@pytest.fixture
def make_user(clean_db: Any, token_for: Any) -> Any:
    """Creates a user row directly (no slow hash) and returns (user_id, auth headers)."""
    from booking.store.users import insert_user

    async def make(role: str = "customer", email: str | None = None) -> tuple[str, dict[str, str]]:
        import uuid

        user = await insert_user(
            clean_db,
            email=email or f"{uuid.uuid4().hex[:10]}@example.com",
            name="Test",
            role=role,
            password_hash="not-a-real-hash",
        )
        assert user is not None
        return user.user_id, {"Authorization": f"Bearer {token_for(user.user_id, role)}"}

    return make


def event_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": "The Drop",
        "venue": "Arena",
        "starts_at": "2030-01-01T20:00:00Z",
        "sale_starts_at": "2020-01-01T10:00:00Z",
        "max_per_user": 4,
        "currency": "EUR",
        "zones": [
            {"name": "Floor", "capacity": 10, "price_minor": 5000},
            {"name": "Balcony", "price_minor": 8000, "seats": ["A1", "A2", "A3", "B1", "B2"]},
        ],
        "queue": {"enabled": False, "max_concurrent": 10, "pass_ttl_s": 60},
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def published_event(client: httpx.AsyncClient, make_user: Any) -> Any:
    """Creates and publishes an event; returns (event body, organizer headers)."""

    async def make(**overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
        _, organizer = await make_user("organizer")
        created = await client.post(
            "/api/v1/events", json=event_payload(**overrides), headers=organizer
        )
        assert created.status_code == 201, created.text
        event = created.json()
        published = await client.post(
            f"/api/v1/events/{event['event_id']}/publish", headers=organizer
        )
        assert published.status_code == 200, published.text
        return published.json(), organizer

    return make
