"""The panel vocabulary of the dashboards (queries, stats, series) and the panels of the
drop-overview and queue dashboards; build_dashboards.py turns them into Grafana JSON."""

from __future__ import annotations

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
    # The waitlist (seats back after a sell-out; seat-release ticks it)
    stat(
        "Waitlisted",
        "suffix: buyers",
        "sum(booking_rush_waitlist_length)",
        "Waitlist entries waiting for an offer, over every event.",
    ),
    stat(
        "Waitlist offers outstanding",
        "suffix: offers",
        "sum(booking_rush_waitlist_offers_outstanding)",
        "Offers made to waitlisted buyers and neither taken nor lapsed yet.",
    ),
    stat(
        "Seats withheld for the waitlist",
        "suffix: seats",
        "sum(booking_rush_waitlist_withheld_seats)",
        "Seats that came back after a sell-out, kept off open sale for the waitlist.",
    ),
    series(
        "Waitlist offers by outcome",
        "short",
        "Offers per minute: made, taken (reserved), lapsed (to the next in line), withdrawn.",
        q(
            "sum by (outcome) (increase(booking_rush_waitlist_offers_total[1m]))",
            "{{outcome}}",
        ),
    ),
)
