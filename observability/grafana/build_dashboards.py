"""Builds the Grafana dashboards (`dashboards/*.json`) from the panel lists below.

Run `python observability/grafana/build_dashboards.py` after changing a panel; a test checks that
the JSON files match this script, and another runs every panel's query against a real Prometheus
that scraped the real processes. Queries use no Grafana variables (so they run as they are) and
fixed `[1m]` windows (scrapes every 1 s in tests, 5 s in docker-compose).

Labels every query may use: `job` (gateway, booking, workers) and `service` (the process:
gateway, booking-1, outbox-relay, ...), both set by the scrape configuration.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
STREAM_ROUTES = 'route!~".*/stream|.*/live"'  # streams last as long as the client stays


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str
    kind: str = "timeseries"  # or "stat"
    extra: dict[str, object] = field(default_factory=dict)


def q(expr: str, legend: str = "") -> Query:
    return Query(" ".join(expr.split()), legend)


def stat(title: str, unit: str, expr: str, description: str) -> Panel:
    return Panel(title, unit, (q(expr),), description, kind="stat")


def series(title: str, unit: str, description: str, *queries: Query) -> Panel:
    return Panel(title, unit, queries, description)


def quantiles(metric: str, selector: str = "", by: str = "") -> tuple[Query, Query]:
    group = f"le{', ' + by if by else ''}"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(  # type: ignore[return-value]
        q(
            f"histogram_quantile({quantile}, sum by ({group}) "
            f"(rate({metric}_bucket{{{selector}}}[1m])))",
            f"p{int(quantile * 100)}{suffix}",
        )
        for quantile in (0.5, 0.99)
    )


GATEWAY_REQUESTS = "booking_rush_gateway_requests_total"

DROP_OVERVIEW = (
    stat(
        "Waiting in queue",
        "suffix: buyers",
        "sum(booking_rush_queue_length)",
        "Buyers in every open virtual queue, as queue-release saw them at its last tick.",
    ),
    stat(
        "Admitted per second",
        "suffix: buyers/s",
        "sum(rate(booking_rush_queue_admitted_total[1m]))",
        "Queue passes minted per second (the queue's outflow).",
    ),
    stat(
        "Seats left",
        "suffix: seats",
        'sum(booking_rush_event_seats{state="available"})',
        "Seats still on sale over every event on sale (reconciler, from Redis).",
    ),
    stat(
        "5xx share",
        "percentunit",
        f'(sum(rate({GATEWAY_REQUESTS}{{status_class="5xx"}}[1m])) or vector(0))'
        f" / sum(rate({GATEWAY_REQUESTS}[1m]))",
        "Share of gateway answers that are server errors (alert above 2%).",
    ),
    series(
        "Seats by state per event",
        "suffix: seats",
        "Available, held (reserved, not paid) and sold seats per event on sale.",
        q("sum by (event_id, state) (booking_rush_event_seats)", "{{event_id}} {{state}}"),
    ),
    series(
        "Reservations by outcome",
        "reqps",
        "How reserve attempts end: reserved, sold_out, user_limit, pass_invalid, ...",
        q(
            "sum by (outcome) (rate(booking_rush_reservations_total[1m]))",
            "{{outcome}}",
        ),
    ),
    series(
        "Gateway latency (p50, p99)",
        "s",
        "Time from request to the end of the answer at the gateway, streams excluded.",
        *quantiles("booking_rush_gateway_request_duration_seconds", STREAM_ROUTES),
    ),
    series(
        "Reserve latency in the booking service (p50, p99)",
        "s",
        "POST /bookings/reserve inside the booking service: Lua script plus group commit.",
        *quantiles("booking_rush_http_request_duration_seconds", 'route="/bookings/reserve"'),
    ),
    series(
        "Gateway answers by status class",
        "reqps",
        "Requests per second by 2xx/3xx/4xx/5xx; 4xx includes sold out (409) and 429.",
        q(
            f"sum by (status_class) (rate({GATEWAY_REQUESTS}[1m]))",
            "{{status_class}}",
        ),
    ),
    series(
        "Rate-limited requests",
        "reqps",
        "Requests refused with 429, by route group and the bucket (ip or user) that refused.",
        q(
            "sum by (group, scope) (rate(booking_rush_gateway_rate_limited_total[1m]))",
            "{{group}} / {{scope}}",
        ),
    ),
    series(
        "Invariants: drift and oversold zones (must stay 0)",
        "short",
        "Seats on which Redis and PostgreSQL disagree, and zones over capacity.",
        q("max(booking_rush_inventory_drift_seats)", "drift seats"),
        q("max(booking_rush_oversold_zones)", "oversold zones"),
    ),
    series(
        "Holds lapsed",
        "ops",
        "Holds that expired and went back on sale, per second (sweep or PostgreSQL catch-up).",
        q("sum by (path) (rate(booking_rush_holds_expired_total[1m]))", "{{path}}"),
    ),
    series(
        "Live availability watchers",
        "short",
        "Browsers watching the live seat feed, by transport (SSE or WebSocket).",
        q("sum by (transport) (booking_rush_feed_connections)", "{{transport}}"),
    ),
    series(
        "Live feed messages sent",
        "ops",
        "Feed messages (snapshots, seat updates) written to watchers per second.",
        q(
            "sum by (transport) (rate(booking_rush_feed_messages_sent_total[1m]))",
            "{{transport}}",
        ),
    ),
)

QUEUE = (
    stat(
        "Waiting",
        "suffix: buyers",
        "sum(booking_rush_queue_length)",
        "Buyers waiting in every open queue.",
    ),
    stat(
        "Passes outstanding",
        "suffix: passes",
        "sum(booking_rush_queue_passes_outstanding)",
        "Passes issued and neither used nor expired (bounded by max_concurrent).",
    ),
    stat(
        "Queue streams open",
        "suffix: streams",
        "sum(booking_rush_queue_sse_connections)",
        "Position streams (SSE) open over every booking replica.",
    ),
    stat(
        "Measured admission rate",
        "suffix: buyers/s",
        "sum(booking_rush_queue_admission_rate)",
        "queue-release's moving average of admissions per second.",
    ),
    series(
        "Admitted per second",
        "suffix: buyers/s",
        "Passes minted per second.",
        q("sum(rate(booking_rush_queue_admitted_total[1m]))", "admitted"),
    ),
    series(
        "Joins by result",
        "reqps",
        "Queue joins per second by the place they got (waiting, pre-queue, admitted at once).",
        q("sum by (status) (rate(booking_rush_queue_joins_total[1m]))", "{{status}}"),
    ),
    series(
        "Pass delivery delay (p50, p99)",
        "s",
        "From the admitting tick to the pass written to the buyer's stream (alert: p99 > 2 s).",
        *quantiles("booking_rush_queue_pass_delivery_seconds"),
    ),
    series(
        "Waiting and outstanding passes",
        "short",
        "Queue length against live passes over time.",
        q("sum(booking_rush_queue_length)", "waiting"),
        q("sum(booking_rush_queue_passes_outstanding)", "passes outstanding"),
    ),
)

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

DASHBOARDS = {
    "drop-overview": ("Drop overview", DROP_OVERVIEW),
    "queue": ("Queue", QUEUE),
    "saga-kafka": ("Saga & Kafka", SAGA_KAFKA),
    "infrastructure": ("Infrastructure", INFRASTRUCTURE),
}


def _panel_json(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, object]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "refId": chr(ord("A") + index),
        }
        for index, query in enumerate(panel.queries)
    ]
    body: dict[str, object] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": (
            {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
            if panel.kind == "stat"
            else {"legend": {"displayMode": "list", "placement": "bottom"}}
        ),
    }
    body.update(panel.extra)
    return body


def dashboard(uid: str, title: str, panels: tuple[Panel, ...]) -> dict[str, object]:
    laid_out = []
    x = y = 0
    row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        width, height = (6, 4) if panel.kind == "stat" else (12, 8)
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(_panel_json(panel, panel_id, {"x": x, "y": y, "w": width, "h": height}))
        x += width
        row_height = max(row_height, height)
    return {
        "uid": f"booking-rush-{uid}",
        "title": f"booking-rush: {title}",
        "tags": ["booking-rush"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": laid_out,
    }


def rendered() -> dict[str, str]:
    """file name -> JSON text of every dashboard."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main() -> int:
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARDS_DIR / name).write_text(text)
        print(f"wrote {DASHBOARDS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
