"""The OpenAPI document of the public HTTP API (served at /api/v1/openapi.json).

Built from one table of operations and the pydantic request models, so the bodies it documents
are the ones the service validates. A test checks that every route the app serves is listed here
and every operation listed is served.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from booking import schemas
from common.problems import CODES

# (method, path, summary, request model or None, success status, public)
Operation = tuple[str, str, str, type[BaseModel] | None, int, bool]

OPERATIONS: list[Operation] = [
    ("post", "/auth/register", "Create a customer account", schemas.RegisterBody, 201, True),
    ("post", "/auth/login", "Exchange credentials for tokens", schemas.LoginBody, 200, True),
    ("post", "/auth/refresh", "Rotate a refresh token", schemas.RefreshBody, 200, True),
    ("get", "/auth/me", "The caller's account", None, 200, False),
    ("post", "/events", "Create an event (organizer, admin)", schemas.EventBody, 201, False),
    ("get", "/events", "Events on sale or closed", None, 200, True),
    ("get", "/events/{event_id}", "One event", None, 200, True),
    ("post", "/events/{event_id}/publish", "Load inventory and open the sale", None, 200, False),
    ("get", "/events/{event_id}/availability", "Seats available per zone", None, 200, True),
    ("post", "/bookings/reserve", "Hold seats (Idempotency-Key required)", schemas.ReserveBody,
     201, False),
    ("get", "/bookings", "My bookings, newest first", None, 200, False),
    ("get", "/bookings/{booking_id}", "One booking (owner or admin)", None, 200, False),
    ("post", "/bookings/{booking_id}/cancel", "Cancel a booking", None, 200, False),
    ("get", "/admin/events/{event_id}/stats", "Counters and Redis/PostgreSQL drift", None, 200,
     False),
    ("get", "/health", "Liveness", None, 200, True),
    ("get", "/ready", "Readiness of Redis and PostgreSQL", None, 200, True),
    ("get", "/metrics", "Prometheus metrics", None, 200, True),
    ("get", "/openapi.json", "This document", None, 200, True),
]  # fmt: skip


def register(operations: list[Operation]) -> None:
    """Modules with routes of their own add their operations here (once, at import)."""
    OPERATIONS.extend(operations)
    document.cache_clear()


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "enum": sorted(CODES)},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Problem": _problem_schema()}
    for method, path, summary, model, status, public in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                str(status): {"description": "success"},
                "default": {
                    "description": "problem",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
            },
        }
        if not public:
            operation["security"] = [{"bearer": []}]
        if model is not None:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                components[name] = definition
            components[model.__name__] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                },
            }
        parameters = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "booking-rush", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
