"""What the booking service's routes work with: built once by the app's lifespan, frozen, typed
(the routes reach it as `booking.http.services(request)`, never through untyped `app.state`
look-ups)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from booking.auth import AuthService
from booking.bookings import Bookings
from booking.catalog import Catalog
from booking.feed import LiveFeed
from booking.inventory.scripts import Scripts
from booking.live_figures import LiveFigures
from booking.payments.service import Payments
from booking.pubsub import Hub
from booking.queue.service import Queue
from booking.queue.stream import QueueStreams
from booking.settings import Settings
from booking.suspensions import Suspensions
from booking.tickets.service import Tickets
from booking.waitlist.service import Waitlist
from common.redis_client import RedisClient


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: RedisClient
    pool: asyncpg.Pool
    scripts: Scripts
    auth: AuthService
    catalog: Catalog
    bookings: Bookings
    payments: Payments
    queue: Queue
    queue_streams: QueueStreams
    hub: Hub
    feed: LiveFeed
    suspensions: Suspensions
    tickets: Tickets
    live_figures: LiveFigures
    waitlist: Waitlist
