"""The booking service's settings: one frozen object built from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from booking.payments.providers import PaymentConfig
from common.settings import Env, ServiceSettings
from common.tokens import TokenKeys


@dataclass(frozen=True, kw_only=True)
class Settings(ServiceSettings):
    """Every variable, its default, and what it means, is listed in README.md ("Settings")."""

    token_keys: TokenKeys
    internal_secret: str
    ticket_secret: str = ""  # TICKET_SECRET, else internal_secret (checked by TicketSigner)
    host: str = "127.0.0.1"
    port: int = 8081
    hold_ttl_s: int = 600
    # A hold being paid for is kept at least this long from the payment's start, so a confirm
    # delayed by a fault (broker, saga worker, Redis restart) never finds it lapsed.
    payment_hold_grace_s: int = 300
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    db_pool_min: int = 2
    db_pool_max: int = 10
    redis_max_connections: int = 1000
    payments: PaymentConfig = field(default_factory=PaymentConfig)
    queue_heartbeat_s: float = 15.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = Env(environ)
        internal_secret = env.internal_secret()
        if len(internal_secret) < 32:
            raise ValueError("INTERNAL_SECRET (or JWT_SECRET) of 32+ characters is required")
        if len(env.ticket_secret()) < 32:
            raise ValueError("TICKET_SECRET, when set, must have 32+ characters")
        return cls(
            **cls.shared(env),
            token_keys=TokenKeys.from_env(dict(env.env), need_signing=True),
            internal_secret=internal_secret,
            ticket_secret=env.ticket_secret(),
            queue_heartbeat_s=env.number("QUEUE_HEARTBEAT_S", cls.queue_heartbeat_s, minimum=0.1),
            host=env.text("BOOKING_HOST", cls.host),
            port=env.integer("BOOKING_PORT", cls.port, minimum=1),
            hold_ttl_s=env.integer("HOLD_TTL_S", cls.hold_ttl_s, minimum=1),
            payment_hold_grace_s=env.integer(
                "PAYMENT_HOLD_GRACE_S", cls.payment_hold_grace_s, minimum=0
            ),
            access_token_ttl_s=env.integer("ACCESS_TOKEN_TTL_S", cls.access_token_ttl_s, minimum=1),
            refresh_token_ttl_s=env.integer(
                "REFRESH_TOKEN_TTL_S", cls.refresh_token_ttl_s, minimum=1
            ),
            db_pool_min=env.integer("DB_POOL_MIN", cls.db_pool_min, minimum=1),
            db_pool_max=env.integer("DB_POOL_MAX", cls.db_pool_max, minimum=1),
            redis_max_connections=env.integer(
                "REDIS_MAX_CONNECTIONS", cls.redis_max_connections, minimum=1
            ),
            payments=PaymentConfig.from_env(env),
        )
