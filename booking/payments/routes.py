"""HTTP routes for /payments (the webhook is public: its signature is its authentication)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from booking.errors import InvalidRequestError
from booking.http import MAX_BODY_BYTES, JSONResponse, identity, read_body, services
from booking.schemas import PaymentBody


async def create_payment(request: Request) -> JSONResponse:
    caller = identity(request)
    body = await read_body(request, PaymentBody)
    answer = await services(request).payments.create(
        caller, body, idempotency_key=request.headers.get("idempotency-key")
    )
    return JSONResponse(answer, status_code=201)


async def get_payment(request: Request) -> JSONResponse:
    payment = await services(request).payments.get(
        identity(request), request.path_params["payment_id"]
    )
    return JSONResponse(payment.body())


async def webhook(request: Request) -> JSONResponse:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequestError.field("body", "too large")
    result = await services(request).payments.receive_webhook(raw, request.headers)
    return JSONResponse({"received": True, "result": result})


routes = [
    Route("/payments", create_payment, methods=["POST"]),
    Route("/payments/webhook", webhook, methods=["POST"]),
    Route("/payments/{payment_id:id}", get_payment, methods=["GET"]),
]
