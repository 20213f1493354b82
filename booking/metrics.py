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
