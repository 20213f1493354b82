"""Small helpers the thin route modules share: JSON in and out, and the caller's identity."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from booking.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from common.tokens import Identity

if TYPE_CHECKING:
    from booking.services import Services

ModelT = TypeVar("ModelT", bound=BaseModel)


# `{name:id}` in a route's path matches a UUID only, so a literal sibling (`/bookings/reserve`,
# `/payments/webhook`) is never taken for an id: a wrong method on it is 405 with Allow, not
# 404 "no such booking". Registered here because every route module imports this one.
class IdConvertor(Convertor[str]):
    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def convert(self, value: str) -> str:
        return str(uuid.UUID(value))

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdConvertor())


# The gateway's default limit too, so a body it lets through is never refused here for size.
MAX_BODY_BYTES = 1024 * 1024


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


def is_json_media_type(content_type: str) -> bool:
    """application/json or a structured +json type, with any parameters (charset=utf-8)."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_raw_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body may be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, model: type[ModelT]) -> ModelT:
    raw = await read_raw_body(request)
    if raw and not is_json_media_type(request.headers.get("content-type", "")):
        raise UnsupportedMediaTypeError("send the body as application/json")
    try:
        parsed = model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidRequestError(detail, errors=errors) from exc
    if not raw:
        # A body whose every field is optional (a PATCH) would otherwise take "nothing sent"
        # for "change nothing"; a client that forgot its body should hear so.
        raise InvalidRequestError(
            "send a JSON object as the body",
            errors=[{"field": "body", "message": "a JSON object is required"}],
        )
    return parsed


def services(connection: HTTPConnection) -> Services:
    """The running app's services (for a request or a WebSocket)."""
    found: Services = connection.app.state.services
    return found


def identity(request: Request) -> Identity:
    """The verified caller; raises UnauthorizedError without a valid bearer token."""
    return services(request).auth.identify(request.headers.get("authorization"))
