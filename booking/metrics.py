"""Every Prometheus metric the booking service exports, defined once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "booking_rush_http_requests_total",
    "HTTP requests answered by the booking service",
    ["route", "method", "status_class"],
)
HTTP_LATENCY = Histogram(
    "booking_rush_http_request_duration_seconds",
    "Booking-service request latency",
    ["route", "status_class"],
    buckets=LATENCY_BUCKETS,
)
RESERVATIONS = Counter(
    "booking_rush_reservations_total",
    "Reservation attempts by outcome",
    ["outcome"],
)
SCRIPT_LATENCY = Histogram(
    "booking_rush_lua_script_duration_seconds",
    "Latency of one Lua script call, round trip",
    ["script"],
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_UP = Gauge(
    "booking_rush_dependency_up",
    "1 when the dependency answered the last readiness check",
    ["dependency"],
)

# Payments (booking service)
PAYMENTS_CREATED = Counter(
    "booking_rush_payments_created_total", "Payments opened with the provider", ["provider"]
)
PAYMENTS_WEBHOOKS = Counter(
    "booking_rush_payments_webhooks_total",
    "Provider webhooks by result (recorded, duplicate, ignored, invalid_signature, ...)",
    ["provider", "result"],
)

# Kafka consumers and the saga workers
KAFKA_CONSUMED = Counter(
    "booking_rush_kafka_messages_consumed_total",
    "Kafka messages a consumer finished with, by outcome (ok, dlq)",
    ["consumer", "topic", "outcome"],
)
KAFKA_PRODUCED = Counter(
    "booking_rush_kafka_messages_produced_total",
    "Kafka messages produced directly by a consumer (dead letters)",
    ["topic"],
)
KAFKA_DLQ = Counter(
    "booking_rush_kafka_dlq_messages_total",
    "Messages sent to <topic>.dlq, by source topic",
    ["topic"],
)
KAFKA_RETRIES = Counter(
    "booking_rush_kafka_handler_retries_total",
    "Retriable handler failures retried with backoff",
    ["consumer", "topic"],
)
KAFKA_LAG = Gauge(
    "booking_rush_kafka_consumer_lag",
    "Messages behind the partition end, summed per topic",
    ["consumer", "topic"],
)
SAGA_TRANSITIONS = Counter(
    "booking_rush_saga_transitions_total", "Saga state changes", ["kind", "state"]
)
SAGA_STEPS = Counter(
    "booking_rush_saga_steps_total", "Saga steps executed, by outcome", ["step", "outcome"]
)
SAGA_TIMEOUTS = Counter(
    "booking_rush_saga_timeouts_total",
    "Sagas or payments the orchestrator's timeout acted on",
    ["action"],
)
