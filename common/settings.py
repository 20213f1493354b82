"""What every process reads from the environment the same way: one reader whose errors name the
variable, and the settings every service shares (Redis, PostgreSQL, Kafka, log level, the
internal secret). Each process's settings derive from `ServiceSettings`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class Env:
    """Reads variables from one mapping (the process environment by default). An unset or
    empty variable takes the default; a malformed one is an error that names it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name) or default

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        raw = self.env.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be an integer, not {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, not {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        raw = self.env.get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, not {value}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        raw = (self.env.get(name) or "").strip().lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ValueError(f"{name} must be one of {'/'.join(_TRUE + _FALSE)}, not {raw!r}")

    def internal_secret(self) -> str:
        """Signs queue passes, internal messages and the mock's webhooks: INTERNAL_SECRET, or
        JWT_SECRET when that is unset (one secret is enough on a single machine)."""
        return self.text("INTERNAL_SECRET") or self.text("JWT_SECRET")

    def ticket_secret(self) -> str:
        """Signs ticket codes: TICKET_SECRET, else the internal secret. Its own variable so that
        scanners verifying codes offline can be given it without the key to everything else."""
        return self.text("TICKET_SECRET") or self.internal_secret()


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # REDIS_CLUSTER=1: REDIS_URL names any node of a Redis Cluster (common/redis_client.py).
    redis_cluster: bool = False
    database_url: str = "postgresql://postgres@127.0.0.1:5432/booking_rush"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_idempotence: bool = False
    kafka_namespace: str = ""
    log_level: str = "INFO"

    @classmethod
    def shared(cls, env: Env) -> dict[str, Any]:
        """The shared fields, read from `env`, as keyword arguments for a subclass."""
        return {
            "redis_url": env.text("REDIS_URL", cls.redis_url),
            "redis_cluster": env.flag("REDIS_CLUSTER"),
            "database_url": env.text("DATABASE_URL", cls.database_url),
            "kafka_bootstrap": env.text("KAFKA_BOOTSTRAP", cls.kafka_bootstrap),
            "kafka_idempotence": env.flag("KAFKA_IDEMPOTENCE"),
            "kafka_namespace": env.text("KAFKA_NAMESPACE"),
            "log_level": env.text("LOG_LEVEL", cls.log_level),
        }
