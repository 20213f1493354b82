"""The drop's hot routes (reserve, queue join) dispatched before Starlette's router.

Starlette's two error layers, its router and the Mount cost ~12 % of the booking process per
reserve (py-spy, `make bench`) for what is one dictionary lookup on (method, path). A hot
request gets what the router would have put on its scope (the route, which names the metrics'
label; the Mount's root path) and its errors meet the same handlers (`booking.problems`) in
the same way: a known error is answered by its handler; any other is answered by the handler
of `Exception` and raised again, as Starlette's ServerErrorMiddleware does, for the request
middleware outside (common/asgi.py). Every other request, a wrong method on a hot path
included (405 with Allow), goes through Starlette.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request, Any], Awaitable[Response]]


class HotRoutesFirst:
    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        routes: Iterable[Route],
        handlers: Mapping[Any, Handler],
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.routes = {
            (method, prefix + route.path): route
            for route in routes
            for method in route.methods or ()
        }
        self.unexpected = handlers[Exception]
        self.handlers = {kind: h for kind, h in handlers.items() if kind is not Exception}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        scope["app_root_path"] = scope.get("app_root_path", root_path)
        scope["root_path"] = root_path + self.prefix
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        answering = False
        try:
            try:
                response = await route.endpoint(request)
            except Exception as exc:
                handler = self._handler(exc)
                if handler is None:
                    raise
                response = await handler(request, exc)
            answering = True
            await response(scope, receive, send)
        except Exception as exc:
            answer = await self.unexpected(request, exc)
            if not answering:
                await answer(scope, receive, send)
            raise

    def _handler(self, exc: Exception) -> Handler | None:
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None
