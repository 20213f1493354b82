"""The booking service's settings: one frozen object built from the environment at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from booking.payments.providers import PaymentConfig
from common.tokens import TokenKeys


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every variable, its default, and what it means, is listed in README.md ("Settings")."""

    token_keys: TokenKeys
    internal_secret: str
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/booking_rush"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_idempotence: bool = False
    host: str = "127.0.0.1"
    port: int = 8081
    log_level: str = "INFO"
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
    kafka_namespace: str = ""
    queue_heartbeat_s: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else dict(env)
        internal_secret = env.get("INTERNAL_SECRET") or env.get("JWT_SECRET") or ""
        if len(internal_secret) < 32:
            raise ValueError("INTERNAL_SECRET (or JWT_SECRET) of 32+ characters is required")
        return cls(
            token_keys=TokenKeys.from_env(env, need_signing=True),
            internal_secret=internal_secret,
            queue_heartbeat_s=float(env.get("QUEUE_HEARTBEAT_S") or cls.queue_heartbeat_s),
            redis_url=env.get("REDIS_URL") or cls.redis_url,
            database_url=env.get("DATABASE_URL") or cls.database_url,
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP") or cls.kafka_bootstrap,
            kafka_idempotence=env.get("KAFKA_IDEMPOTENCE", "0").lower() in ("1", "true", "yes"),
            host=env.get("BOOKING_HOST") or cls.host,
            port=_int(env, "BOOKING_PORT", cls.port),
            log_level=env.get("LOG_LEVEL") or cls.log_level,
            hold_ttl_s=_int(env, "HOLD_TTL_S", cls.hold_ttl_s),
            payment_hold_grace_s=_int(
                env, "PAYMENT_HOLD_GRACE_S", cls.payment_hold_grace_s, minimum=0
            ),
            access_token_ttl_s=_int(env, "ACCESS_TOKEN_TTL_S", cls.access_token_ttl_s),
            refresh_token_ttl_s=_int(env, "REFRESH_TOKEN_TTL_S", cls.refresh_token_ttl_s),
            db_pool_min=_int(env, "DB_POOL_MIN", cls.db_pool_min),
            db_pool_max=_int(env, "DB_POOL_MAX", cls.db_pool_max),
            redis_max_connections=_int(env, "REDIS_MAX_CONNECTIONS", cls.redis_max_connections),
            payments=PaymentConfig.from_env(env),
            kafka_namespace=env.get("KAFKA_NAMESPACE") or "",
        )
