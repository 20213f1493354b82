"""Every Prometheus metric the booking service exports, defined once."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.loop_watch import LAG_BUCKETS

__all__ = [
    "CHECKINS",
    "DEPENDENCY_UP",
    "EMAILS",
    "EMAIL_RETRIES",
    "EVENT_LOOP_LAG",
    "EXPIRY_WARNINGS",
    "FEED_CONNECTIONS",
    "FEED_DROPPED",
    "FEED_MESSAGES_SENT",
    "FEED_REDIS_MESSAGES",
    "FEED_RESYNCS",
    "FEED_ROOMS",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "KAFKA_CONSUMED",
    "KAFKA_DLQ",
    "KAFKA_LAG",
    "KAFKA_PRODUCED",
    "KAFKA_RETRIES",
    "LATENCY_BUCKETS",
    "MISMATCH_REFUNDS",
    "PAYMENTS_CREATED",
    "PAYMENTS_WEBHOOKS",
    "PAYMENT_MISMATCHES",
    "POOLS",
    "QUEUE_JOINS",
    "QUEUE_PASS_DELIVERY",
    "QUEUE_STREAMS",
    "RESERVATIONS",
    "SAGA_STEPS",
    "SAGA_TIMEOUTS",
    "SAGA_TRANSITIONS",
    "SCRIPT_LATENCY",
    "TICKETS_ISSUED",
    "WAITLIST_JOINS",
    "WAITLIST_LENGTH",
    "WAITLIST_OFFERS",
    "WAITLIST_OFFERS_OUTSTANDING",
    "WAITLIST_WITHHELD",
    "PoolCollector",
]

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
EVENT_LOOP_LAG = Histogram(
    "booking_rush_event_loop_lag_seconds",
    "How much later than asked the event loop woke a short sleep (common/loop_watch.py)",
    buckets=LAG_BUCKETS,
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
PAYMENT_MISMATCHES = Counter(
    "booking_rush_payment_mismatch_total",
    "Provider successes refused for confirmation, by what differed from the payment "
    "(payment_intent, amount, currency) and where they were seen (webhook, provider)",
    ["reason", "source"],
)
MISMATCH_REFUNDS = Counter(
    "booking_rush_payment_mismatch_refunds_total",
    "What became of the money a refused success named (refunded, nothing_to_refund, refused)",
    ["outcome"],
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
# The notifier (workers/notifier.py). outcome: sent, failed (to the DLQ), duplicate (already
# sent: skipped), resent (sent again after a try whose outcome was lost in a crash).
EMAILS = Counter(
    "booking_rush_emails_total",
    "Emails the notifier handled, by kind and outcome",
    ["kind", "outcome"],
)
EMAIL_RETRIES = Counter(
    "booking_rush_email_retries_total", "SMTP attempts that failed and were tried again", ["kind"]
)
EXPIRY_WARNINGS = Counter(
    "booking_rush_hold_expiry_warnings_total", "Buyers warned that their hold is about to lapse"
)

# The virtual queue (booking service side; the queue-release worker exports the outflow ones).
QUEUE_JOINS = Counter(
    "booking_rush_queue_joins_total",
    "Queue joins by the place they got (waiting, pre, admitted)",
    ["status"],
)
QUEUE_STREAMS = Gauge(
    "booking_rush_queue_sse_connections",
    "Queue position streams (SSE) open in this process",
)
QUEUE_PASS_DELIVERY = Histogram(
    "booking_rush_queue_pass_delivery_seconds",
    "From admission (the tick that minted the pass) to the pass event written to the stream",
    buckets=LATENCY_BUCKETS,
)


# The live availability feed (booking/feed.py): watchers over SSE and WebSocket.
FEED_CONNECTIONS = Gauge(
    "booking_rush_feed_connections",
    "Live availability watchers connected to this process, by transport (sse, ws)",
    ["transport"],
)
FEED_ROOMS = Gauge(
    "booking_rush_feed_rooms",
    "Events with at least one local watcher (one Redis subscription each)",
)
FEED_REDIS_MESSAGES = Counter(
    "booking_rush_feed_redis_messages_total",
    "Seat updates received from Redis pub/sub (one per change, whatever the watcher count)",
)
FEED_MESSAGES_SENT = Counter(
    "booking_rush_feed_messages_sent_total",
    "Feed messages written to watchers (snapshots, seat updates, replies), by transport",
    ["transport"],
)
FEED_RESYNCS = Counter(
    "booking_rush_feed_resyncs_total",
    "Lagging watchers whose backlog was replaced by a fresh availability snapshot",
)
FEED_DROPPED = Counter(
    "booking_rush_feed_dropped_clients_total",
    "Watchers disconnected for being too slow, by transport",
    ["transport"],
)

CHECKINS = Counter(
    "booking_rush_checkins_total",
    "Ticket scans at the door by outcome (admitted, already_checked_in, void, invalid, ...)",
    ["outcome"],
)
TICKETS_ISSUED = Counter(
    "booking_rush_tickets_issued_total", "Tickets issued to confirmed bookings"
)


class PoolCollector(Collector):
    """PostgreSQL and Redis connection pools of this process, read at scrape time (no cost per
    request). `watch(state)` takes the app state; its services' `pool` and `redis` are looked up
    lazily, so it may be called before the lifespan has created them."""

    def __init__(self) -> None:
        self._state: Any = None

    def watch(self, state: Any) -> None:
        self._state = state

    def collect(self) -> Any:
        size = GaugeMetricFamily(
            "booking_rush_postgres_pool_connections",
            "PostgreSQL pool connections by state (open = in use + idle; max = the limit)",
            labels=["state"],
        )
        redis = GaugeMetricFamily(
            "booking_rush_redis_pool_connections",
            "Redis client pool connections by state (in_use, idle, max)",
            labels=["state"],
        )
        services = getattr(self._state, "services", None)  # set by the lifespan
        pool = getattr(services, "pool", None)
        if pool is not None:
            idle = pool.get_idle_size()
            size.add_metric(["open"], pool.get_size())
            size.add_metric(["idle"], idle)
            size.add_metric(["in_use"], pool.get_size() - idle)
            size.add_metric(["max"], pool.get_max_size())
        client = getattr(services, "redis", None)
        connections = getattr(client, "connection_pool", None)
        if connections is not None:
            # redis-py keeps no public counters; these sets are its pool's own bookkeeping.
            in_use = len(getattr(connections, "_in_use_connections", ()))
            redis.add_metric(["in_use"], in_use)
            redis.add_metric(["idle"], len(getattr(connections, "_available_connections", ())))
            redis.add_metric(["max"], getattr(connections, "max_connections", 0) or 0)
        yield size
        yield redis


POOLS = PoolCollector()
REGISTRY.register(POOLS)


# The waitlist (booking/waitlist/; the gauges and the offer counts come from the worker that
# ticks it, seat-release; joins from the booking service).
WAITLIST_JOINS = Counter("booking_rush_waitlist_joins_total", "Waitlist entries created")
WAITLIST_LENGTH = Gauge(
    "booking_rush_waitlist_length",
    "Entries waiting without an offer, over every event (at the worker's last tick)",
)
WAITLIST_OFFERS_OUTSTANDING = Gauge(
    "booking_rush_waitlist_offers_outstanding", "Offers made and not yet taken or lapsed"
)
WAITLIST_WITHHELD = Gauge(
    "booking_rush_waitlist_withheld_seats", "Seats held back from open sale for the waitlist"
)
WAITLIST_OFFERS = Counter(
    "booking_rush_waitlist_offers_total",
    "Waitlist offers by what became of them: made, taken, lapsed, withdrawn",
    ["outcome"],
)
