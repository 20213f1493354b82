"""A stand-in for Stripe's API (the outside world), over real HTTP: PaymentIntents (create,
retrieve, search by our payment id, cancel) and refunds, with Stripe's Idempotency-Key rule, plus
the signed webhook events Stripe would send about them."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from booking.payments.providers.base import signature_header
from booking.payments.providers.stripe import SIGNATURE_HEADER, StripeProvider
from stack.processes import free_port

SECRET_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_standin_" + "s" * 20


@dataclass
class StripeStandIn:
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    creates: int = 0  # create requests received (a replayed Idempotency-Key counts too)
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by Idempotency-Key
    base_url: str = ""

    def provider(self, api_base: str | None = None) -> StripeProvider:
        return StripeProvider(
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
            api_base=api_base or self.base_url,
        )

    def add_intent(
        self, *, amount: int, currency: str, payment_id: str | None, status: str
    ) -> dict[str, Any]:
        intent: dict[str, Any] = {
            "id": f"pi_{uuid.uuid4().hex[:16]}",
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if status == "succeeded" else 0,
            "currency": currency.lower(),
            "status": status,
            "metadata": {"payment_id": payment_id} if payment_id else {},
        }
        self.intents[intent["id"]] = intent
        return intent

    def intent_of(self, payment_id: str) -> dict[str, Any]:
        (intent,) = [
            i for i in self.intents.values() if i["metadata"].get("payment_id") == payment_id
        ]
        return intent

    def pay(self, intent_id: str) -> dict[str, Any]:
        """The buyer completes the PaymentIntent: Stripe takes its amount."""
        intent = self.intents[intent_id]
        intent.update(status="succeeded", amount_received=intent["amount"])
        return intent

    @staticmethod
    def event(type_: str, intent: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A signed webhook about `intent`, as it stands."""
        body = orjson.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "object": "event",
                "type": type_,
                "created": int(time.time()),
                "data": {"object": intent},
            }
        )
        signature = signature_header(WEBHOOK_SECRET, body, int(time.time()))
        return body, {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}

    # --- the API ------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        self.creates += 1
        key = request.headers["Idempotency-Key"]
        if key not in self._answers:
            form = await request.post()
            intent = self.add_intent(
                amount=int(str(form["amount"])),
                currency=str(form["currency"]),
                payment_id=str(form["metadata[payment_id]"]),
                status="requires_payment_method",
            )
            self._answers[key] = intent
        return web.json_response(self._answers[key])

    async def _retrieve(self, request: web.Request) -> web.Response:
        intent = self.intents.get(request.match_info["id"])
        if intent is None:
            return web.json_response({"error": {"message": "No such payment_intent"}}, status=404)
        return web.json_response(intent)

    async def _search(self, request: web.Request) -> web.Response:
        query = request.query["query"]
        found = [
            i for i in self.intents.values() if f"'{i['metadata'].get('payment_id')}'" in query
        ]
        return web.json_response({"object": "search_result", "data": found})

    async def _cancel(self, request: web.Request) -> web.Response:
        intent = self.intents[request.match_info["id"]]
        if intent["status"] in ("succeeded", "processing"):
            return web.json_response({"error": {"message": "cannot cancel"}}, status=400)
        intent["status"] = "canceled"
        return web.json_response(intent)

    async def _refund(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        if key in self._answers:
            return web.json_response(self._answers[key])
        form = await request.post()
        intent = self.intents.get(str(form["payment_intent"]))
        if intent is None or intent["status"] != "succeeded":
            message = "This PaymentIntent does not have a successful charge to refund."
            return web.json_response({"error": {"message": message}}, status=400)
        amount = int(str(form["amount"])) if "amount" in form else intent["amount_received"]
        refund = {
            "id": f"re_{uuid.uuid4().hex[:16]}",
            "payment_intent": intent["id"],
            "amount": amount,
            "currency": intent["currency"],
            "idempotency_key": key,
        }
        self.refunds.append(refund)
        self._answers[key] = refund
        return web.json_response(refund)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[StripeStandIn]:
        app = web.Application()
        app.router.add_post("/v1/payment_intents", self._create)
        app.router.add_get("/v1/payment_intents/search", self._search)
        app.router.add_get("/v1/payment_intents/{id}", self._retrieve)
        app.router.add_post("/v1/payment_intents/{id}/cancel", self._cancel)
        app.router.add_post("/v1/refunds", self._refund)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()
