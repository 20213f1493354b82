"""The gateway's own endpoints, unknown paths, and the route table behind the metric labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.routes import FALLBACK, classify
from tests.gateway.conftest import free_port


async def test_health(gateway: httpx.AsyncClient) -> None:
    for path in ("/health", "/api/v1/health"):
        answer = await gateway.get(path)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}


async def test_ready_when_everything_answers(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.get("/api/v1/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["dependencies"] == {"redis": "ok", "booking": "ok"}


async def test_ready_names_the_booking_service_when_it_is_down(
    start_gateway: Callable[..., Any],
) -> None:
    async with start_gateway(upstreams=(f"http://127.0.0.1:{free_port()}",)) as client:
        answer = await client.get("/api/v1/ready")
        assert answer.status_code == 503
        problem = answer.json()
        assert problem["code"] == "service_unavailable"
        assert "booking" in problem["detail"]
        assert problem["dependencies"]["redis"] == "ok"
        assert problem["dependencies"]["booking"].startswith("down")
        assert answer.headers["retry-after"]


async def test_ready_names_redis_when_it_is_down(start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        answer = await client.get("/api/v1/ready")
        assert answer.status_code == 503
        assert "redis" in answer.json()["detail"]
        assert answer.json()["dependencies"]["booking"] == "ok"


async def test_unknown_paths_are_problem_404(gateway: httpx.AsyncClient) -> None:
    for path in ("/", "/nowhere", "/api/v2/events"):
        answer = await gateway.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "not_found"
    wrong_method = await gateway.post("/metrics")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


async def test_metrics_use_route_templates_never_ids(
    gateway: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    await gateway.get("/api/v1/bookings/3f1c5a9e-0000-4000-8000-000000000001", headers=headers)
    await gateway.get("/api/v1/events/ev-77/availability")
    await gateway.get("/nowhere-id-123")
    text = (await gateway.get("/api/v1/metrics")).text
    assert (
        'booking_rush_gateway_requests_total{method="GET",route="/api/v1/bookings/{id}",'
        'status_class="2xx"} 1.0'
    ) in text
    assert 'route="/api/v1/events/{id}/availability"' in text
    assert 'route="{unmatched}"' in text
    assert "booking_rush_gateway_request_duration_seconds_bucket" in text
    assert "3f1c5a9e" not in text and "ev-77" not in text and "id-123" not in text


@pytest.mark.parametrize(
    ("path", "template", "public_get"),
    [
        ("/api/v1/bookings/reserve", "/api/v1/bookings/reserve", False),
        ("/api/v1/bookings/b-1", "/api/v1/bookings/{id}", False),
        ("/api/v1/events", "/api/v1/events", True),
        ("/api/v1/events/e-1/availability/stream", "/api/v1/events/{id}/availability/stream", True),
        ("/api/v1/payments/webhook", "/api/v1/payments/webhook", False),
        ("/api/v1/events//availability", FALLBACK.template, False),
        ("/api/v1/something/else", FALLBACK.template, False),
    ],
)
def test_route_table(path: str, template: str, public_get: bool) -> None:
    spec = classify(path)
    assert spec.template == template
    assert spec.is_public("GET") is public_get
    assert classify("/api/v1/payments/webhook").is_public("POST")
    assert not classify("/api/v1/events").is_public("POST")
