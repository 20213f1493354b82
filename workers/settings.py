"""Worker settings: one frozen object built from the environment by the entrypoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from booking.payments.providers import PaymentConfig


@dataclass(frozen=True)
class WorkerSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/booking_rush"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_idempotence: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    log_level: str = "INFO"
    interval_s: float = 1.0
    # Liveness (issue 12): exit non-zero when the loop finished no tick for liveness_s, or when
    # ticks kept failing for failing_exit_s, so the supervisor restarts the process.
    liveness_s: float = 60.0
    failing_exit_s: float = 30.0
    batch_size: int = 500
    kafka_session_timeout_ms: int = 6000
    # 4 = what Tansu gives a topic it auto-creates: after the embedded broker restarts empty,
    # whichever client asks first recreates the topics, and a different count left consumers
    # assigned to partitions that no longer matched (messages on the new one never read).
    kafka_partitions: int = 4
    saga_timeout_s: float = 30.0
    kafka_namespace: str = ""
    payments: PaymentConfig = field(default_factory=PaymentConfig)
    internal_secret: str = ""  # signs queue passes (queue-release); INTERNAL_SECRET or JWT_SECRET

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        return cls(
            redis_url=env.get("REDIS_URL") or cls.redis_url,
            database_url=env.get("DATABASE_URL") or cls.database_url,
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP") or cls.kafka_bootstrap,
            kafka_idempotence=env.get("KAFKA_IDEMPOTENCE", "0").lower() in ("1", "true", "yes"),
            metrics_host=env.get("WORKER_METRICS_HOST") or cls.metrics_host,
            metrics_port=int(env.get("WORKER_METRICS_PORT") or cls.metrics_port),
            log_level=env.get("LOG_LEVEL") or cls.log_level,
            interval_s=float(env.get("WORKER_INTERVAL_S") or cls.interval_s),
            liveness_s=float(env.get("WORKER_LIVENESS_S") or cls.liveness_s),
            failing_exit_s=float(env.get("WORKER_FAILING_EXIT_S") or cls.failing_exit_s),
            batch_size=int(env.get("WORKER_BATCH_SIZE") or cls.batch_size),
            kafka_session_timeout_ms=int(
                env.get("KAFKA_SESSION_TIMEOUT_MS") or cls.kafka_session_timeout_ms
            ),
            kafka_partitions=int(env.get("KAFKA_PARTITIONS") or cls.kafka_partitions),
            saga_timeout_s=float(env.get("SAGA_TIMEOUT_S") or cls.saga_timeout_s),
            kafka_namespace=env.get("KAFKA_NAMESPACE") or "",
            payments=PaymentConfig.from_env(env),
            internal_secret=env.get("INTERNAL_SECRET") or env.get("JWT_SECRET") or "",
        )
