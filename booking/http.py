"""Small helpers the thin route modules share: JSON in and out, and the caller's identity."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from booking.errors import InvalidRequestError
from common.tokens import Identity

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_BODY_BYTES = 256 * 1024


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        errors.append({"field": field, "message": error["msg"]})
    return errors


async def read_body(request: Request, model: type[ModelT]) -> ModelT:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequestError.field("body", "too large")
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidRequestError(detail, errors=errors) from exc


def identity(request: Request) -> Identity:
    """The verified caller; raises UnauthorizedError without a valid bearer token."""
    return request.app.state.auth.identify(request.headers.get("authorization"))
