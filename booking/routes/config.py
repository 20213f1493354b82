"""GET /config: what a client page needs to know about this deployment (public, no secrets)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from booking.http import JSONResponse, services
from booking.payments.providers.mock import TEST_OUTCOMES


async def client_config(request: Request) -> JSONResponse:
    # The mock provider is the development and test setting (production runs a real provider),
    # so its scripted outcomes are offered exactly when it is the provider in use.
    provider = services(request).payments.provider
    return JSONResponse(
        {
            "payment_provider": services(request).settings.payments.provider,
            "test_outcomes": list(TEST_OUTCOMES) if provider.supports_test_outcome else [],
        }
    )


routes = [Route("/config", client_config, methods=["GET"])]
