"""The methods each API path takes: a 405 with `Allow` at the gateway for any other, before the
request reaches the booking service, and a route table that matches the booking service's."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from starlette.routing import Route

from booking.app import API_ROUTES
from gateway.app import OWN_PATHS
from gateway.routes import API_PREFIX, ROUTES, classify


def assert_method_not_allowed(answer: httpx.Response, allow: str) -> None:
    assert answer.status_code == 405, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "method_not_allowed"
    assert answer.headers["allow"] == allow
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/bookings/reserve", "POST"),
        ("GET", "/api/v1/bookings/reserve", "POST"),
        ("POST", "/api/v1/events/ev-1", "GET, HEAD"),
        ("PUT", "/api/v1/queue/position/ev-1", "GET, HEAD, DELETE"),
        ("TRACE", "/api/v1/events", "GET, HEAD, POST"),
        ("OPTIONS", "/api/v1/payments", "POST"),
    ],
)
async def test_a_method_the_path_does_not_take_is_405_with_allow(
    gateway: httpx.AsyncClient,
    token_for: Callable[..., str],
    method: str,
    path: str,
    allow: str,
) -> None:
    for headers in ({"Authorization": f"Bearer {token_for()}"}, {}):
        # The stand-in upstream would answer 200 to anything: this is the gateway's answer.
        assert_method_not_allowed(await gateway.request(method, path, headers=headers), allow)


async def test_the_gateways_own_paths_answer_405_with_allow(gateway: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/api/v1/health", "/api/v1/ready"):
        assert_method_not_allowed(await gateway.post(path), "GET, HEAD")


def _booking_methods() -> dict[str, set[str]]:
    """Methods per path, as the booking service routes them."""
    methods: dict[str, set[str]] = {}
    for route in API_ROUTES:
        if isinstance(route, Route) and route.methods:
            path = API_PREFIX + re.sub(r"\{[^}]+\}", "{id}", route.path)
            methods.setdefault(path, set()).update(route.methods)
    return methods


def test_the_route_table_takes_the_methods_the_booking_service_routes() -> None:
    booking_methods = _booking_methods()
    for path, methods in booking_methods.items():
        if path in OWN_PATHS:
            continue
        assert classify(path).template == path, f"{path} is missing from gateway/routes.py"
        assert classify(path).methods == methods, path
    for spec in ROUTES:
        if spec.template != API_PREFIX + "/events/{id}/live":  # a WebSocket upstream
            assert spec.template in booking_methods, f"{spec.template} is not a booking route"
