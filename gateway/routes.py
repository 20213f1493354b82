"""The closed set of API route templates the gateway knows: which are public, which rate-limit
group they belong to, which stream. Templates double as the `route` metric label, so ids never
become label values.
"""

from __future__ import annotations

from dataclasses import dataclass

API_PREFIX = "/api/v1"
UNMATCHED_API = "/api/v1/{other}"
UNMATCHED = "{unmatched}"

DEFAULT_GROUP = "default"
AUTH_GROUP = "auth"


@dataclass(frozen=True)
class RouteSpec:
    template: str
    public_methods: frozenset[str] = frozenset()
    group: str = DEFAULT_GROUP
    streams: bool = False
    rate_limited: bool = True

    def is_public(self, method: str) -> bool:
        return method in self.public_methods or (method == "HEAD" and "GET" in self.public_methods)


def _spec(
    path: str,
    public: tuple[str, ...] = (),
    group: str = DEFAULT_GROUP,
    streams: bool = False,
    rate_limited: bool = True,
) -> RouteSpec:
    return RouteSpec(API_PREFIX + path, frozenset(public), group, streams, rate_limited)


ROUTES: tuple[RouteSpec, ...] = (
    _spec("/auth/register", ("POST",), AUTH_GROUP),
    _spec("/auth/login", ("POST",), AUTH_GROUP),
    _spec("/auth/refresh", ("POST",), AUTH_GROUP),
    _spec("/auth/me"),
    _spec("/events", ("GET",)),
    _spec("/events/{id}", ("GET",)),
    _spec("/events/{id}/publish"),
    _spec("/events/{id}/availability", ("GET",)),
    _spec("/events/{id}/availability/stream", ("GET",), streams=True),
    _spec("/events/{id}/live", ("GET",), streams=True),
    _spec("/events/{id}/seats/suspend"),
    _spec("/events/{id}/seats/unsuspend"),
    _spec("/events/{id}/queue"),
    _spec("/queue/join"),
    _spec("/queue/position/{id}"),
    _spec("/queue/position/{id}/stream", streams=True),
    _spec("/bookings"),
    _spec("/bookings/reserve"),
    _spec("/bookings/{id}"),
    _spec("/bookings/{id}/cancel"),
    _spec("/payments"),
    # The provider's signed webhooks come from a few addresses and are retried until answered;
    # throttling them in a drop would only delay paid bookings (the service checks signatures).
    _spec("/payments/webhook", ("POST",), rate_limited=False),
    _spec("/payments/{id}"),
    _spec("/admin/events/{id}/stats"),
    _spec("/openapi.json", ("GET",)),
)

# Anything else under /api/v1 is proxied too (the booking service answers 404), but never public.
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


def classify(path: str) -> RouteSpec:
    """The route spec of an /api/v1 path (FALLBACK when no template matches)."""
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
