"""The one table of error codes, and problem+json (RFC 9457) rendering.

Every HTTP error anywhere in booking-rush is built here, so a code has exactly one status
and one title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"

# code -> (HTTP status, title)
CODES: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Not allowed"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "invalid_request": (422, "The request is not valid"),
    "unsupported_media_type": (415, "The request body must be JSON"),
    "idempotency_key_required": (400, "Idempotency-Key header required"),
    "idempotency_key_reused": (422, "Idempotency-Key reused with a different request"),
    "idempotency_in_flight": (409, "A request with this Idempotency-Key is still running"),
    "email_taken": (409, "Email already registered"),
    "invalid_credentials": (401, "Invalid credentials"),
    "sold_out": (409, "Sold out"),
    "seat_unavailable": (409, "Seat unavailable"),
    "user_limit_exceeded": (409, "Per-user ticket limit exceeded"),
    "sale_not_open": (409, "The sale is not open"),
    "queue_pass_required": (403, "A queue pass is required"),
    "queue_pass_invalid": (403, "The queue pass is not valid"),
    "invalid_state": (409, "Not possible in the current state"),
    "reservation_expired": (410, "The reservation has expired"),
    "invalid_signature": (401, "The webhook signature is not valid"),
    "rate_limited": (429, "Too many requests"),
    "service_unavailable": (503, "Service unavailable"),
    "bad_gateway": (502, "The upstream service did not answer"),
    "payload_too_large": (413, "Request body too large"),
    "internal_error": (500, "Internal error"),
    "ticket_invalid": (422, "Not a ticket code of ours"),
    "already_checked_in": (409, "The ticket was checked in already"),
    "ticket_void": (409, "The ticket is void (its booking was refunded or cancelled)"),
    "not_sold_out": (409, "Not sold out: reserve instead of joining the waitlist"),
    "already_waitlisted": (409, "Already on this event's waitlist with another request"),
    "waitlist_closed": (409, "This event has no waitlist"),
    "waitlist_offer_invalid": (403, "The waitlist offer is not valid"),
    "waitlist_offer_expired": (410, "The waitlist offer has expired"),
    "waitlist_offer_mismatch": (422, "The reservation does not match the waitlist offer"),
}


def problem_body(
    code: str,
    detail: str | None = None,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    status, title = CODES[code]
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def problem_response(
    code: str,
    detail: str | None = None,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body = problem_body(code, detail, errors=errors, extra=extra)
    return Response(
        orjson.dumps(body),
        status_code=body["status"],
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers) if headers else None,
    )
