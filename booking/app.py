"""The booking service: create_app wires settings, pools and routes; nothing else lives here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from booking import db
from booking.auth import AuthService
from booking.bookings import Bookings, mark_durable_after_commit
from booking.catalog import Catalog
from booking.feed import LiveFeed
from booking.hold_writer import HoldWriter
from booking.inventory.scripts import Scripts
from booking.live_figures import LiveFigures
from booking.metrics import EVENT_LOOP_LAG
from booking.middleware import BookingApp
from booking.payments import routes as payment_routes
from booking.payments.providers import create_provider
from booking.payments.saga import SagaTopics
from booking.payments.service import Payments
from booking.problems import EXCEPTION_HANDLERS
from booking.pubsub import Hub
from booking.queue import routes as queue_routes
from booking.queue.service import QUEUE_REDIS_CONNECTIONS, Queue
from booking.queue.store import QueueStore
from booking.queue.stream import QueueStreams
from booking.routes import admin as admin_routes
from booking.routes import auth as auth_routes
from booking.routes import bookings as booking_routes
from booking.routes import config as config_routes
from booking.routes import events as event_routes
from booking.routes import feed as feed_routes
from booking.routes import ops as ops_routes
from booking.routes import seats as seat_routes
from booking.routes import waitlist as waitlist_routes
from booking.services import Services
from booking.settings import Settings
from booking.sold_out import SoldOutWall
from booking.suspensions import Suspensions
from booking.tickets import TicketSigner
from booking.tickets import routes as ticket_routes
from booking.tickets.service import Tickets
from booking.waitlist.service import Waitlist
from common import heap
from common.loop_watch import LoopWatch
from common.redis_client import RedisClient, connect, open_redis

API_PREFIX = "/api/v1"
REDIS_CONNECT_TIMEOUT_S = 2.0
REDIS_TIMEOUT_S = 10.0


# Every route under /api/v1. The router tries them in order: the drop's hot paths (reserve,
# queue) come first.
API_ROUTES: list[BaseRoute] = [
    *booking_routes.routes,
    *queue_routes.routes,
    *ops_routes.routes,
    *auth_routes.routes,
    *event_routes.routes,
    *payment_routes.routes,
    *admin_routes.routes,
    *feed_routes.routes,
    *seat_routes.routes,
    *ticket_routes.routes,
    *config_routes.routes,
    *waitlist_routes.routes,
]

# Dispatched before Starlette's router (booking/hot_routes.py): the drop's hot paths.
HOT_PATHS = frozenset({"/bookings/reserve", "/queue/join"})


def _queue_redis(settings: Settings) -> RedisClient:
    """The queue's own pool, so a burst of stream connects never starves the reserve path's.
    On a single node it is a blocking pool (a burst waits for a connection instead of failing);
    a cluster client bounds each node's pool instead."""
    if settings.redis_cluster:
        return open_redis(
            settings.redis_url,
            cluster=True,
            max_connections=QUEUE_REDIS_CONNECTIONS,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
        )
    return aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=QUEUE_REDIS_CONNECTIONS,
            timeout=10,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
        )
    )


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The hot path's pool. Not a BlockingConnectionPool: its per-checkout timeout cost ~8% of
        # a reserve (profiled); the pool is sized far above the requests one process runs at once.
        redis = await connect(
            settings.redis_url,
            cluster=settings.redis_cluster,
            max_connections=settings.redis_max_connections,
            # A Redis host that vanishes (not refusing, just silent) must turn into a quick 503,
            # not a request hanging until the gateway gives up.
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
        )
        pool = await db.create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        auth = AuthService(
            pool=pool,
            keys=settings.token_keys,
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl_s=settings.refresh_token_ttl_s,
        )
        scripts = Scripts(redis)
        await scripts.load()
        writer = HoldWriter(pool, on_committed=mark_durable_after_commit(scripts))
        writer.start()
        catalog = Catalog(pool=pool, scripts=scripts)
        provider = create_provider(settings.payments, pool=pool)
        provider.start()
        payments = Payments(
            pool=pool,
            provider=provider,
            topics=SagaTopics.for_namespace(settings.kafka_namespace),
            scripts=scripts,
            hold_grace_s=settings.payment_hold_grace_s,
        )
        bookings = Bookings(
            pool=pool,
            scripts=scripts,
            writer=writer,
            hold_ttl_s=settings.hold_ttl_s,
            pass_secret=settings.internal_secret,
            payments=payments,
        )
        queue_redis = _queue_redis(settings)
        queue_store = QueueStore(queue_redis)
        await queue_store.load()
        hub = Hub(settings.redis_url, cluster=settings.redis_cluster)
        await hub.start()
        bookings.wall = wall = SoldOutWall(hub, scripts)
        queue = Queue(pool=pool, store=queue_store, catalog=catalog)
        # The live availability feed shares the process's one pub/sub connection (the Hub).
        feed = LiveFeed(hub, catalog.availability)
        queue_streams = QueueStreams(hub, queue_store, queue.clock)
        live_figures = LiveFigures(
            redis, rooms=feed.room_figures, queue_streams=queue_streams.stream_counts
        )
        queue_streams.on_pass_delivered = live_figures.pass_delivered
        live_figures.start()
        app.state.services = Services(
            settings=settings,
            redis=redis,
            pool=pool,
            scripts=scripts,
            auth=auth,
            catalog=catalog,
            bookings=bookings,
            payments=payments,
            queue=queue,
            queue_streams=queue_streams,
            hub=hub,
            feed=feed,
            suspensions=Suspensions(pool=pool, scripts=scripts),
            tickets=Tickets(pool=pool, signer=TicketSigner(settings.ticket_secret)),
            live_figures=live_figures,
            waitlist=Waitlist(pool=pool, redis=redis, scripts=scripts, catalog=catalog),
        )
        loop_watch = LoopWatch(EVENT_LOOP_LAG)
        loop_watch.start()
        heap.settle_after_startup()
        try:
            yield
        finally:
            await live_figures.stop()
            await feed.stop()
            await wall.stop()
            await hub.stop()
            await queue_store.aclose()
            await queue_redis.aclose()
            if isinstance(queue_redis, aioredis.Redis):
                await queue_redis.connection_pool.aclose()
            await provider.aclose()
            await writer.stop()
            await pool.close()
            await scripts.aclose()
            await redis.aclose()
            await loop_watch.stop()

    app = BookingApp(
        routes=[Mount(API_PREFIX, routes=API_ROUTES), *ops_routes.routes],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.hot_prefix = API_PREFIX
    app.hot_routes = tuple(
        route for route in API_ROUTES if isinstance(route, Route) and route.path in HOT_PATHS
    )
    return app
