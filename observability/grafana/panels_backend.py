"""The panels of the saga-kafka and infrastructure dashboards (see panels.py for the
vocabulary)."""

from __future__ import annotations

from panels import q, series, stat

SAGA_KAFKA = (
    stat(
        "Outbox backlog",
        "suffix: messages",
        "max(booking_rush_outbox_backlog)",
        "Outbox rows not yet published to Kafka (alert above 1000 for 5 minutes).",
    ),
    stat(
        "Dead-lettered (last 15 min)",
        "suffix: messages",
        "sum(increase(booking_rush_kafka_dlq_messages_total[15m])) or vector(0)",
        "Messages sent to a <topic>.dlq topic (alert on any).",
    ),
    stat(
        "Sagas retried 10 times (last 15 min)",
        "suffix: sagas",
        'sum(increase(booking_rush_saga_timeouts_total{action="gave_up"}[15m])) or vector(0)',
        "Sagas whose step did not answer 10 tries in a row; they keep retrying: check saga-step.",
    ),
    stat(
        "Max consumer lag",
        "suffix: messages",
        "max(booking_rush_kafka_consumer_lag) or vector(0)",
        "The largest lag of any consumer on any topic.",
    ),
    series(
        "Outbox published per topic",
        "ops",
        "Messages the outbox relay published to Kafka per second.",
        q("sum by (topic) (rate(booking_rush_outbox_published_total[1m]))", "{{topic}}"),
    ),
    series(
        "Messages consumed",
        "ops",
        "Messages each consumer finished per second, by outcome (ok or dlq).",
        q(
            "sum by (consumer, outcome) (rate(booking_rush_kafka_messages_consumed_total[1m]))",
            "{{consumer}} {{outcome}}",
        ),
    ),
    series(
        "Consumer lag",
        "short",
        "Messages behind the partition ends, per consumer and topic.",
        q("sum by (consumer, topic) (booking_rush_kafka_consumer_lag)", "{{consumer}} {{topic}}"),
    ),
    series(
        "Saga transitions",
        "ops",
        "Saga state changes per second by saga kind and the state entered.",
        q(
            "sum by (kind, state) (rate(booking_rush_saga_transitions_total[1m]))",
            "{{kind}} {{state}}",
        ),
    ),
    series(
        "Saga steps by outcome",
        "ops",
        "Steps executed per second (confirm, notify, refund, release...) and how they ended.",
        q(
            "sum by (step, outcome) (rate(booking_rush_saga_steps_total[1m]))",
            "{{step}} {{outcome}}",
        ),
    ),
    series(
        "Payments and webhooks",
        "ops",
        "Payments opened with the provider and provider webhooks by result.",
        q(
            "sum by (provider) (rate(booking_rush_payments_created_total[1m]))",
            "created {{provider}}",
        ),
        q(
            "sum by (result) (rate(booking_rush_payments_webhooks_total[1m]))",
            "webhook {{result}}",
        ),
    ),
)

INFRASTRUCTURE = (
    series(
        "Scrape targets up",
        "short",
        "1 when Prometheus reached the process's /metrics at the last scrape.",
        q("up", "{{service}}"),
    ),
    series(
        "Dependencies seen by the booking service",
        "short",
        "1 when Redis / PostgreSQL answered the last readiness check (/api/v1/ready).",
        q("min by (dependency) (booking_rush_dependency_up)", "{{dependency}}"),
    ),
    series(
        "PostgreSQL pool connections",
        "short",
        "Booking service connection pool: in use, idle, and the limit (DB_POOL_MAX).",
        q(
            "sum by (service, state) (booking_rush_postgres_pool_connections)",
            "{{service}} {{state}}",
        ),
    ),
    series(
        "Redis client connections",
        "short",
        "Booking service Redis pool: in use and idle connections (REDIS_MAX_CONNECTIONS).",
        q(
            'sum by (service, state) (booking_rush_redis_pool_connections{state!="max"})',
            "{{service}} {{state}}",
        ),
    ),
    series(
        "Lua script latency (p99)",
        "s",
        "Round trip of each inventory script (EVALSHA) as the caller saw it.",
        q(
            "histogram_quantile(0.99, sum by (le, script) "
            "(rate(booking_rush_lua_script_duration_seconds_bucket[1m])))",
            "{{script}}",
        ),
    ),
    series(
        "Process CPU",
        "percentunit",
        "CPU time per second of each process (1 = one core busy).",
        q("sum by (service) (rate(process_cpu_seconds_total[1m]))", "{{service}}"),
    ),
    series(
        "Event loop lag (p99)",
        "s",
        "How late each service's event loop woke a 0.1 s sleep. Lag with CPU near one core is "
        "saturation (add replicas); lag without it is a blocking call: the process's log names "
        "its stack ('event loop blocked').",
        q(
            "histogram_quantile(0.99, sum by (le, service) "
            "(rate(booking_rush_event_loop_lag_seconds_bucket[1m])))",
            "{{service}}",
        ),
        q(
            "histogram_quantile(0.99, sum by (le, service) "
            "(rate(booking_rush_gateway_event_loop_lag_seconds_bucket[1m])))",
            "{{service}}",
        ),
    ),
    series(
        "Process memory (RSS)",
        "bytes",
        "Resident memory of each process.",
        q("sum by (service) (process_resident_memory_bytes)", "{{service}}"),
    ),
    series(
        "Worker ticks",
        "ops",
        "Ticks per second by worker and result (ok / error).",
        q(
            "sum by (worker, result) (rate(booking_rush_worker_ticks_total[1m]))",
            "{{worker}} {{result}}",
        ),
    ),
    series(
        "Items handled by workers",
        "ops",
        "Items (holds released, messages relayed, buyers admitted...) per second per worker.",
        q("sum by (worker) (rate(booking_rush_worker_items_total[1m]))", "{{worker}}"),
    ),
    series(
        "Booking service answers by status class",
        "reqps",
        "Requests per second answered by the booking replicas, by status class.",
        q(
            "sum by (service, status_class) (rate(booking_rush_http_requests_total[1m]))",
            "{{service}} {{status_class}}",
        ),
    ),
    series(
        "Time since a worker's last good tick",
        "s",
        "Seconds since each worker last finished a tick (alert above 60 s).",
        q(
            "time() - max by (worker) (booking_rush_worker_last_success_timestamp_seconds)",
            "{{worker}}",
        ),
    ),
    series(
        "Worker tick duration (p99)",
        "s",
        "How long one tick of each worker takes.",
        q(
            "histogram_quantile(0.99, sum by (le, worker) "
            "(rate(booking_rush_worker_tick_duration_seconds_bucket[1m])))",
            "{{worker}}",
        ),
    ),
    series(
        "Gateway to booking service failures",
        "ops",
        "Failures reaching the booking replicas, by kind (connect, timeout, protocol, stream).",
        q(
            "sum by (kind) (rate(booking_rush_gateway_upstream_errors_total[1m]))",
            "{{kind}}",
        ),
    ),
    series(
        "Rate limiter failing open",
        "ops",
        "Requests let through unchecked because the gateway's Redis did not answer.",
        q("sum(rate(booking_rush_gateway_rate_limit_fail_open_total[1m]))", "fail open"),
    ),
)
