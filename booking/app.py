"""The booking service: create_app wires settings, pools and routes; nothing else lives here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import Mount

from booking import db
from booking.auth import AuthService
from booking.bookings import Bookings, mark_durable_after_commit
from booking.catalog import Catalog
from booking.hold_writer import HoldWriter
from booking.middleware import RequestContextMiddleware
from booking.payments import Payments
from booking.problems import EXCEPTION_HANDLERS
from booking.providers import create_provider
from booking.pubsub import Hub
from booking.queue import QUEUE_HEARTBEAT_S, Queue
from booking.routes import admin as admin_routes
from booking.routes import auth as auth_routes
from booking.routes import bookings as booking_routes
from booking.routes import events as event_routes
from booking.routes import ops as ops_routes
from booking.routes import payments as payment_routes
from booking.routes import queue as queue_routes
from booking.scripts import Scripts
from booking.settings import Settings
from booking.store.queue import QueueStore

API_PREFIX = "/api/v1"


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = aioredis.Redis.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections
        )
        pool = await db.create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        app.state.settings = settings
        app.state.redis = redis
        app.state.pool = pool
        app.state.auth = AuthService(
            pool=pool,
            keys=settings.token_keys,
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl_s=settings.refresh_token_ttl_s,
        )
        scripts = Scripts(redis)
        await scripts.load()
        writer = HoldWriter(pool, on_committed=mark_durable_after_commit(scripts))
        writer.start()
        app.state.scripts = scripts
        app.state.catalog = Catalog(pool=pool, scripts=scripts)
        app.state.bookings = Bookings(
            pool=pool,
            scripts=scripts,
            writer=writer,
            hold_ttl_s=settings.hold_ttl_s,
            pass_secret=settings.internal_secret,
        )
        provider = create_provider(settings.payments)
        app.state.payments = Payments(pool=pool, provider=provider)
        app.state.bookings.payments = app.state.payments
        queue_store = QueueStore(redis)
        await queue_store.load()
        hub = Hub(settings.redis_url)
        await hub.start()
        app.state.hub = hub
        app.state.queue = Queue(pool=pool, store=queue_store, catalog=app.state.catalog, hub=hub)
        app.state.queue_heartbeat_s = getattr(settings, "queue_heartbeat_s", QUEUE_HEARTBEAT_S)
        try:
            yield
        finally:
            await hub.stop()
            await provider.aclose()
            await writer.stop()
            await pool.close()
            await redis.aclose()

    api_routes = [
        *ops_routes.routes,
        *auth_routes.routes,
        *event_routes.routes,
        *booking_routes.routes,
        *payment_routes.routes,
        *queue_routes.routes,
        *admin_routes.routes,
    ]
    app = Starlette(
        routes=[Mount(API_PREFIX, routes=api_routes), *ops_routes.routes],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware)
    return app
