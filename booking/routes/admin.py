"""HTTP routes for /admin: the views of an event's managers (its organizer, admins)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.routing import Route

from booking.errors import ServiceUnavailableError
from booking.http import JSONResponse, identity, services
from booking.reconcile import compare_event


async def event_stats(request: Request) -> JSONResponse:
    state = services(request)
    event = await state.catalog.get_managed_event(
        identity(request), request.path_params["event_id"]
    )
    zones = await compare_event(state.pool, state.scripts, event)
    if zones is None:
        if event.status == "draft":
            zones = []
        else:
            raise ServiceUnavailableError(
                "inventory is not loaded in Redis; the reconciler rebuilds it"
            )
    queue = await state.queue.store.stats(event.event_id, int(time.time() * 1000))
    if queue is None and event.queue_enabled:
        # Nobody has joined yet: the queue is set up in Redis at the first join.
        queue = {
            "open": event.status == "on_sale",
            "paused": event.queue_paused,
            "sold_out": False,
            "waiting": 0,
            "pre_queue": 0,
            "passes_outstanding": 0,
            "admitted_per_s": 0.0,
        }
    return JSONResponse(
        {
            "event_id": event.event_id,
            "status": event.status,
            "capacity": sum(zone.capacity for zone in event.zones),
            "available": sum(zone.redis_available for zone in zones),
            "held": sum(zone.redis_held for zone in zones),
            "sold": sum(zone.redis_sold for zone in zones),
            "drift": sum(zone.drift for zone in zones),
            "zones": [zone.body() for zone in zones],
            "queue": queue,
            "live": await state.live_figures.read(event.event_id),
        }
    )


routes = [Route("/admin/events/{event_id}/stats", event_stats, methods=["GET"])]
