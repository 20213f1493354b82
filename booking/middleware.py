"""The booking service's request middleware (common/asgi.py): its metrics, its route labels, and
the app class that puts it outside Starlette's error layer, where `add_middleware` cannot (that
layer, ServerErrorMiddleware, is always the outermost of Starlette's own stack)."""

from __future__ import annotations

import functools
import re
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from booking.hot_routes import HotRoutesFirst
from booking.metrics import HTTP_LATENCY, HTTP_REQUESTS, POOLS
from common.asgi import RequestMiddleware

_CONVERTOR = re.compile(r":\w+}")


@functools.cache
def _without_convertors(path: str) -> str:
    return _CONVERTOR.sub("}", path)


def route_template(scope: Scope) -> str:
    """The matched route's path template (set on the scope by Starlette's router), never an id;
    `{booking_id:id}` is written `{booking_id}`, as the OpenAPI document names it."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return _without_convertors(path) if path else "unmatched"


# Looking a labelled child up takes the metric's lock and builds its key: ~3 % of a walled
# sold-out answer (py-spy, `make bench` phase e). Routes are templates and httptools knows a
# fixed set of methods, so the combinations are few; the bound only guards against surprises.
@functools.lru_cache(maxsize=4096)
def _request_children(route: str, method: str, status: int) -> tuple[Any, Any]:
    status_class = f"{status // 100}xx"
    return (
        HTTP_REQUESTS.labels(route, method, status_class),
        HTTP_LATENCY.labels(route, status_class),
    )


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    requests, latency = _request_children(route, method, status)
    requests.inc()
    latency.observe(seconds)


class BookingApp(Starlette):
    """Starlette wrapped in the request middleware; `hot_routes` (under `hot_prefix`) are
    dispatched before Starlette (booking/hot_routes.py)."""

    hot_prefix = ""
    hot_routes: tuple[Route, ...] = ()

    def build_middleware_stack(self) -> ASGIApp:
        # Built on the app's first call, a server's lifespan startup: the pools appear on this
        # state during startup, and the collector reads them at scrape time.
        POOLS.watch(self.state)
        return RequestMiddleware(
            HotRoutesFirst(
                super().build_middleware_stack(),
                prefix=self.hot_prefix,
                routes=self.hot_routes,
                handlers=self.exception_handlers,
            ),
            service="booking",
            route_of=route_template,
            observe=observe_request,
        )
