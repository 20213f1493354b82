"""The OpenAPI document of the public HTTP API (served at /api/v1/openapi.json): the contract.

Built from one table of operations (`booking/openapi_table.py`): the request models the service
validates with, the success bodies (booking.responses), every header the API reads, the problems
each operation answers, examples, and links that chain register → login and event → publish →
reserve → pay, so a client can be generated from it and a fuzzer (schemathesis, in the suite)
can walk the whole flow. A test checks that every route served is listed there and every
operation listed is served.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from booking.openapi_table import OPERATIONS, Operation
from booking.payments.providers.mock import SIGNATURE_HEADER as MOCK_SIGNATURE_HEADER
from booking.payments.providers.stripe import SIGNATURE_HEADER as STRIPE_SIGNATURE_HEADER
from common.problems import CODES, PROBLEM_CONTENT_TYPE

SIGNATURE_HEADERS = {"mock": MOCK_SIGNATURE_HEADER, "stripe": STRIPE_SIGNATURE_HEADER}


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


def _problems_of(operation: Operation) -> dict[int, list[str]]:
    """Status -> codes this operation may answer (the gateway's included)."""
    codes = ["rate_limited", "service_unavailable", *operation.problems]
    if not operation.public:
        codes += ["unauthorized", "forbidden"]
    if "{" in operation.path:
        codes.append("not_found")
    if operation.body is not None or operation.operation_id == "paymentWebhook":
        codes += ["invalid_request", "payload_too_large", "unsupported_media_type"]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(CODES[code][0], []).append(code)
    return by_status


def _model_schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _parameters(operation: Operation) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {
            "name": part[1:-1],
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }
        for part in operation.path.split("/")
        if part.startswith("{")
    ]
    for query in operation.query:
        parameters.append(
            {
                "name": query.name,
                "in": "query",
                "required": False,
                "description": query.description,
                "schema": query.schema,
            }
        )
    for header in operation.headers:
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": header.required,
                "description": header.description,
                "schema": header.schema,
            }
        )
    parameters.append(
        {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "description": "Kept when it matches [A-Za-z0-9._-]{1,128}, else replaced by a "
            "fresh id; echoed back and written into every log line of the request.",
            "schema": {"type": "string"},
        }
    )
    return parameters


def _operation(operation: Operation, components: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": operation.summary}
    if operation.media_type:
        content: dict[str, Any] = {}
        if operation.response is not None:
            content["schema"] = _model_schema(operation.response, components)
        success["content"] = {operation.media_type: content}
    success["headers"] = {"X-Request-ID": {"schema": {"type": "string"}}}
    if operation.links:
        success["links"] = operation.links
    answers: dict[str, Any] = {str(operation.status): success}
    problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status, codes in sorted(_problems_of(operation).items()):
        answers[str(status)] = {"description": ", ".join(codes), "content": problem}
    answers["default"] = {"description": "another problem", "content": problem}
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": _parameters(operation),
        "responses": answers,
    }
    if operation.operation_id == "paymentWebhook":
        spec["security"] = [{"webhookSignature": []}]
        spec["requestBody"] = {
            "required": True,
            "description": "The provider's event, exactly as it signed it.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    elif not operation.public:
        spec["security"] = [{"bearer": []}]
    else:
        spec["security"] = []
    if operation.body is not None:
        body: dict[str, Any] = {"schema": _model_schema(operation.body, components)}
        if operation.example is not None:
            body["example"] = operation.example
        spec["requestBody"] = {"required": True, "content": {"application/json": body}}
    return spec


@cache
def document(payment_provider: str = "mock") -> dict[str, Any]:
    signature_header = SIGNATURE_HEADERS.get(payment_provider, MOCK_SIGNATURE_HEADER)
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Problem": _problem_schema()}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "booking-rush",
            "version": "1",
            "description": "Ticket drops: a virtual queue, holds, payments. Errors are "
            "application/problem+json with a stable `code`. Bodies are JSON (415 otherwise), "
            "at most 1 MiB (413), typed strictly: a string is not a number and a bool is not "
            "a quantity.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": signature_header,
                    "description": "t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>'>",
                },
            },
        },
    }
