"""Worker settings: one frozen object built from the environment by the entrypoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from booking.payments import PaymentConfig
from common.settings import Env, ServiceSettings
from workers.smtp import SmtpConfig


@dataclass(frozen=True, kw_only=True)
class WorkerSettings(ServiceSettings):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
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
    payments: PaymentConfig = field(default_factory=PaymentConfig)
    internal_secret: str = ""  # signs queue passes (queue-release); INTERNAL_SECRET or JWT_SECRET
    ticket_secret: str = ""  # signs tickets (saga-step); TICKET_SECRET, else internal_secret
    # The notifier: where email goes (SMTP_URL, SMTP_FROM) and how often a deferred one is tried.
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    notifier_max_attempts: int = 5
    notifier_backoff_s: float = 1.0
    # seat-release warns a buyer this long before the hold lapses (at most half the hold); 0: never.
    hold_expiry_warning_s: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = Env(environ)
        return cls(
            **cls.shared(env),
            metrics_host=env.text("WORKER_METRICS_HOST", cls.metrics_host),
            metrics_port=env.integer("WORKER_METRICS_PORT", cls.metrics_port, minimum=0),
            interval_s=env.number("WORKER_INTERVAL_S", cls.interval_s, minimum=0.001),
            liveness_s=env.number("WORKER_LIVENESS_S", cls.liveness_s, minimum=0),
            failing_exit_s=env.number("WORKER_FAILING_EXIT_S", cls.failing_exit_s, minimum=0),
            batch_size=env.integer("WORKER_BATCH_SIZE", cls.batch_size, minimum=1),
            kafka_session_timeout_ms=env.integer(
                "KAFKA_SESSION_TIMEOUT_MS", cls.kafka_session_timeout_ms, minimum=1
            ),
            kafka_partitions=env.integer("KAFKA_PARTITIONS", cls.kafka_partitions, minimum=1),
            saga_timeout_s=env.number("SAGA_TIMEOUT_S", cls.saga_timeout_s, minimum=0.001),
            payments=PaymentConfig.from_env(env),
            internal_secret=env.internal_secret(),
            ticket_secret=env.ticket_secret(),
            smtp=SmtpConfig.from_env(env),
            notifier_max_attempts=env.integer(
                "NOTIFIER_MAX_ATTEMPTS", cls.notifier_max_attempts, minimum=1
            ),
            notifier_backoff_s=env.number("NOTIFIER_BACKOFF_S", cls.notifier_backoff_s, minimum=0),
            hold_expiry_warning_s=env.number(
                "HOLD_EXPIRY_WARNING_S", cls.hold_expiry_warning_s, minimum=0
            ),
        )
