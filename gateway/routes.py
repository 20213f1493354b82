"""The closed set of API route templates the gateway knows: the methods each takes (as the
booking service routes them; anything else is a 405 with `Allow` at the gateway), which are
public, which rate-limit group they belong to, which stream. Templates double as the `route`
metric label, so ids never become label values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

API_PREFIX = "/api/v1"
UNMATCHED_API = "/api/v1/{other}"
UNMATCHED = "{unmatched}"
# Set on the scope by the endpoint that handled the request: its route template.
ROUTE_SCOPE_KEY = "gateway.route"

DEFAULT_GROUP = "default"
AUTH_GROUP = "auth"

# In the order `Allow` lists them.
PROXIED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allow_header(methods: Iterable[str]) -> str:
    """The `Allow` header of a 405: the methods in a stable order."""
    allowed = set(methods)
    return ", ".join(method for method in PROXIED_METHODS if method in allowed)


@dataclass(frozen=True)
class RouteSpec:
    template: str
    methods: frozenset[str] = frozenset(PROXIED_METHODS)
    public_methods: frozenset[str] = frozenset()
    group: str = DEFAULT_GROUP
    streams: bool = False
    rate_limited: bool = True

    def is_public(self, method: str) -> bool:
        return method in self.public_methods or (method == "HEAD" and "GET" in self.public_methods)

    def allow(self) -> str:
        return allow_header(self.methods)


def _spec(
    path: str,
    methods: str,
    public: tuple[str, ...] = (),
    group: str = DEFAULT_GROUP,
    streams: bool = False,
    rate_limited: bool = True,
) -> RouteSpec:
    allowed = set(methods.split())
    if "GET" in allowed:
        allowed.add("HEAD")  # as Starlette routes it upstream
    return RouteSpec(
        API_PREFIX + path, frozenset(allowed), frozenset(public), group, streams, rate_limited
    )


ROUTES: tuple[RouteSpec, ...] = (
    _spec("/auth/register", "POST", ("POST",), AUTH_GROUP),
    _spec("/auth/login", "POST", ("POST",), AUTH_GROUP),
    _spec("/auth/refresh", "POST", ("POST",), AUTH_GROUP),
    _spec("/auth/logout", "POST", ("POST",), AUTH_GROUP),
    _spec("/auth/me", "GET"),
    _spec("/events", "GET POST", ("GET",)),
    _spec("/events/{id}", "GET", ("GET",)),
    _spec("/events/{id}/publish", "POST"),
    _spec("/events/{id}/availability", "GET", ("GET",)),
    _spec("/events/{id}/availability/stream", "GET", ("GET",), streams=True),
    _spec("/events/{id}/seats", "GET", ("GET",)),
    _spec("/events/{id}/live", "GET", ("GET",), streams=True),
    _spec("/events/{id}/seats/suspend", "POST"),
    _spec("/events/{id}/seats/unsuspend", "POST"),
    _spec("/events/{id}/queue", "PATCH"),
    _spec("/events/{id}/waitlist", "GET POST DELETE"),
    _spec("/events/{id}/waitlist/stream", "GET", streams=True),
    _spec("/events/{id}/waitlist/settings", "PATCH"),
    _spec("/queue/join", "POST"),
    _spec("/queue/position/{id}", "GET DELETE"),
    _spec("/queue/position/{id}/stream", "GET", streams=True),
    _spec("/bookings", "GET"),
    _spec("/bookings/reserve", "POST"),
    _spec("/bookings/{id}", "GET"),
    _spec("/bookings/{id}/cancel", "POST"),
    _spec("/payments", "POST"),
    # The provider's signed webhooks come from a few addresses and are retried until answered;
    # throttling them in a drop would only delay paid bookings (the service checks signatures).
    _spec("/payments/webhook", "POST", ("POST",), rate_limited=False),
    _spec("/payments/{id}", "GET"),
    _spec("/admin/events/{id}/stats", "GET"),
    _spec("/checkin", "POST"),
    _spec("/openapi.json", "GET", ("GET",)),
    _spec("/config", "GET", ("GET",)),
)

# Anything else under /api/v1 is proxied too with any ordinary method (the booking service
# answers 404), but never public.
FALLBACK = RouteSpec(UNMATCHED_API)

_Pattern = tuple[str | None, ...]


def _pattern(template: str) -> _Pattern:
    return tuple(None if part.startswith("{") else part for part in template.split("/"))


def _build_index() -> dict[int, list[tuple[_Pattern, RouteSpec]]]:
    index: dict[int, list[tuple[_Pattern, RouteSpec]]] = {}
    for spec in ROUTES:
        pattern = _pattern(spec.template)
        index.setdefault(len(pattern), []).append((pattern, spec))
    for candidates in index.values():
        # Literal segments win over placeholders: /bookings/reserve before /bookings/{id}.
        candidates.sort(key=lambda item: item[0].count(None))
    return index


_INDEX = _build_index()


# Paths seen, with their spec: most requests of a drop hit a few fixed paths. Bounded: dropped
# whole when full (paths carry ids).
_SEEN: dict[str, RouteSpec] = {}
_SEEN_MAX = 4096


def classify(path: str) -> RouteSpec:
    """The route spec of an /api/v1 path (FALLBACK when no template matches)."""
    spec = _SEEN.get(path)
    if spec is None:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        spec = _SEEN[path] = _match(path)
    return spec


def _match(path: str) -> RouteSpec:
    parts = path.split("/")
    for pattern, spec in _INDEX.get(len(parts), ()):
        for expected, actual in zip(pattern, parts, strict=True):
            if expected is None:
                if not actual:
                    break
            elif expected != actual:
                break
        else:
            return spec
    return FALLBACK
