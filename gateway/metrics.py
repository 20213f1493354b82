"""Every Prometheus metric the gateway exports, on a per-app registry.

Labels are small closed sets: `route` is a template from `gateway.routes` (never an id),
`status_class` is `2xx`..`5xx`, `method` is a known HTTP method or `OTHER`.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from common.loop_watch import LAG_BUCKETS
from gateway.routes import AUTH_GROUP, DEFAULT_GROUP

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# What can go wrong towards the booking service (the `kind` label).
UPSTREAM_CONNECT = "connect"
UPSTREAM_TIMEOUT = "timeout"
UPSTREAM_PROTOCOL = "protocol"
UPSTREAM_STREAM = "stream"
# A connection ended before any answer and the request went to the next upstream.
UPSTREAM_RETRIED = "retried"
UPSTREAM_KINDS = (
    UPSTREAM_CONNECT,
    UPSTREAM_TIMEOUT,
    UPSTREAM_PROTOCOL,
    UPSTREAM_STREAM,
    UPSTREAM_RETRIED,
)
# Rate-limit label values (gateway.routes groups, gateway.ratelimit buckets).
RATE_LIMIT_GROUPS = (DEFAULT_GROUP, AUTH_GROUP)
RATE_LIMIT_SCOPES = ("ip", "user")

CONTENT_TYPE = CONTENT_TYPE_LATEST


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            # CPU, memory, open fds of this process (the default registry has it; ours needs it).
            ProcessCollector(registry=registry)
        self.registry = registry
        self.requests = Counter(
            "booking_rush_gateway_requests_total",
            "Requests answered by the gateway.",
            ["route", "method", "status_class"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "booking_rush_gateway_request_duration_seconds",
            "Time from request start to the end of the response (streams: their whole life).",
            ["route", "status_class"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited_total = Counter(
            "booking_rush_gateway_rate_limited_total",
            "Requests refused with 429, by route group and the bucket that refused.",
            ["group", "scope"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "booking_rush_gateway_upstream_errors_total",
            "Failures talking to the booking service.",
            ["kind"],
            registry=self.registry,
        )
        self.rate_limit_fail_open = Counter(
            "booking_rush_gateway_rate_limit_fail_open_total",
            "Requests let through unchecked because the rate-limit Redis was unavailable.",
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "booking_rush_gateway_event_loop_lag_seconds",
            "How much later than asked the event loop woke a short sleep (common/loop_watch.py).",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        # Closed label sets start at 0, so rates and alerts see "none yet" rather than no series.
        for kind in UPSTREAM_KINDS:
            self.upstream_errors.labels(kind)
        for group in RATE_LIMIT_GROUPS:
            for scope in RATE_LIMIT_SCOPES:
                self.rate_limited_total.labels(group, scope)
        # labels() takes a lock and hashes; the label sets are few, so cache the children.
        # Keyed by the status itself: no label string to build per request.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            if method not in METHODS:
                method = "OTHER"
            status_class = f"{status // 100}xx"
            children = (
                self.requests.labels(route, method, status_class),
                self.duration.labels(route, status_class),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def rate_limited(self, group: str, scope: str) -> None:
        self.rate_limited_total.labels(group, scope).inc()

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
