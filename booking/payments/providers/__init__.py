"""Payment providers behind one small interface (`base.PaymentProvider`), chosen by
PAYMENT_PROVIDER (`mock`, the default, or `stripe`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from booking.payments.providers.base import PaymentProvider
from common.settings import Env

PROVIDERS = ("mock", "stripe")


def derived_webhook_secret(internal_secret: str) -> str:
    """The mock's signing secret when PAYMENT_WEBHOOK_SECRET is unset (stable per deployment)."""
    return hmac.new(internal_secret.encode(), b"payment-webhook", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PaymentConfig:
    provider: str = "mock"
    webhook_url: str = "http://127.0.0.1:8081/api/v1/payments/webhook"
    webhook_secret: str = ""
    mock_delay_s: float = 0.2
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""

    @classmethod
    def from_env(cls, environ: Env | Mapping[str, str]) -> PaymentConfig:
        env = environ if isinstance(environ, Env) else Env(environ)
        provider = env.text("PAYMENT_PROVIDER", cls.provider).lower()
        if provider not in PROVIDERS:
            raise ValueError(f"PAYMENT_PROVIDER must be one of {', '.join(PROVIDERS)}")
        port = env.integer("BOOKING_PORT", 8081, minimum=1)
        internal = env.internal_secret()
        return cls(
            provider=provider,
            webhook_url=env.text(
                "PAYMENT_WEBHOOK_URL", f"http://127.0.0.1:{port}/api/v1/payments/webhook"
            ),
            webhook_secret=env.text("PAYMENT_WEBHOOK_SECRET")
            or (derived_webhook_secret(internal) if internal else ""),
            mock_delay_s=env.number("MOCK_PAYMENT_DELAY_S", cls.mock_delay_s, minimum=0),
            stripe_secret_key=env.text("STRIPE_SECRET_KEY"),
            stripe_webhook_secret=env.text("STRIPE_WEBHOOK_SECRET"),
        )


def create_provider(config: PaymentConfig, *, pool: asyncpg.Pool | None = None) -> PaymentProvider:
    """`pool`: the mock keeps its books in PostgreSQL (every process that pays, refunds or asks
    about payments passes one)."""
    if config.provider == "stripe":
        from booking.payments.providers.stripe import StripeProvider

        return StripeProvider(
            secret_key=config.stripe_secret_key, webhook_secret=config.stripe_webhook_secret
        )
    from booking.payments.providers.mock import MockProvider

    return MockProvider(
        webhook_url=config.webhook_url,
        webhook_secret=config.webhook_secret,
        delay_s=config.mock_delay_s,
        pool=pool,
    )
