"""Typed calls of the waitlist's Lua scripts (`lua/waitlist_*.lua`) and reads of its Redis keys.

Built by `booking.inventory.scripts.Scripts` (as `scripts.waitlist`), which loads and closes
these with its own; reserve.lua takes an offer through `Scripts.reserve(offer_id=...)`. The
use-cases live in `booking/waitlist/`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from booking.domain import rfc3339_of_ms
from booking.inventory.keys import event_keys, script_keys
from booking.inventory.lua_errors import as_text, check_reply
from common.redis_client import RedisClient

if TYPE_CHECKING:
    from booking.inventory.scripts import TimedScript

WAITLIST_SCRIPT_NAMES = ("waitlist_join", "waitlist_leave", "waitlist_tick")
ENDED_OFFER = ("TAKEN", "LAPSED", "WITHDRAWN")


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer as Redis holds it (`waitlist:offers`)."""

    offer_id: str
    entry_id: str
    user_id: str
    zone_id: str
    quantity: int
    seats: tuple[str, ...]
    expires_ms: int
    created_ms: int
    status: str  # OUTSTANDING | TAKEN | LAPSED | WITHDRAWN
    booking_id: str | None = None
    ended_ms: int | None = None

    @classmethod
    def from_json(cls, offer_id: str, raw: str | bytes) -> Offer:
        record = orjson.loads(raw)
        seats = record.get("seats")
        return cls(
            offer_id=offer_id,
            entry_id=record["entry_id"],
            user_id=record["user"],
            zone_id=record["zone"],
            quantity=int(record["qty"]),
            seats=tuple(seats) if isinstance(seats, list) else (),
            expires_ms=int(record["expires_ms"]),
            created_ms=int(record.get("created_ms") or 0),
            status=record["status"],
            booking_id=record.get("booking_id"),
            ended_ms=None if record.get("ended_ms") is None else int(record["ended_ms"]),
        )


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """A waitlist entry as Redis holds it (`waitlist:entries`)."""

    user_id: str
    entry_id: str
    zone_id: str  # "" = any zone
    quantity: int
    position: int
    offer_id: str | None


@dataclass(frozen=True, slots=True)
class TickResult:
    made: int
    lapsed: int
    returned: int  # seats put back on sale
    waiting: int
    outstanding: int
    withheld: int

    @property
    def idle(self) -> bool:
        """Nothing left for the waitlist of this event to do."""
        return self.waiting == 0 and self.outstanding == 0 and self.withheld == 0


class WaitlistScripts:
    def __init__(
        self,
        redis: RedisClient,
        register: Callable[[str], TimedScript],
        clock: Callable[[], int],
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._join = register("waitlist_join")
        self._leave = register("waitlist_leave")
        self._tick = register("waitlist_tick")

    async def load(self) -> None:
        for script in (self._join, self._leave, self._tick):
            await script.load()

    async def aclose(self) -> None:
        for script in (self._join, self._leave, self._tick):
            await script.aclose()

    async def join(
        self,
        event_id: str,
        *,
        user_id: str,
        entry_id: str,
        zone_id: str,
        quantity: int,
        position: int,
    ) -> bool:
        """True when added; False when the user already had an entry in Redis."""
        reply = check_reply(
            await self._join(
                keys=script_keys(event_id),
                args=(user_id, entry_id, zone_id, quantity, position),
            )
        )
        return int(reply[1]) == 1

    async def leave(
        self, event_id: str, user_id: str, *, entry_id: str = "", now_ms: int | None = None
    ) -> tuple[bool, str | None]:
        """(removed, the id of the outstanding offer it withdrew)."""
        now = self._clock() if now_ms is None else now_ms
        reply = check_reply(
            await self._leave(keys=script_keys(event_id), args=(user_id, now, entry_id))
        )
        withdrawn = as_text(reply[2])
        return int(reply[1]) == 1, withdrawn or None

    async def tick(
        self,
        event_id: str,
        offer_ids: Sequence[str],
        *,
        scan: int = 1000,
        now_ms: int | None = None,
    ) -> TickResult:
        now = self._clock() if now_ms is None else now_ms
        reply = check_reply(
            await self._tick(
                keys=script_keys(event_id),
                args=(now, rfc3339_of_ms(now), orjson.dumps(list(offer_ids)), scan),
            )
        )
        made, lapsed, returned, waiting, outstanding, withheld = (int(v) for v in reply[1:7])
        return TickResult(made, lapsed, returned, waiting, outstanding, withheld)

    # plain reads, and the one plain write (after PostgreSQL recorded what ended)

    async def offers(self, event_id: str) -> list[Offer]:
        """Every offer Redis keeps: outstanding ones and ended ones not yet recorded."""
        raw: dict[Any, Any] = await self._redis.hgetall(event_keys(event_id).offers)
        return [Offer.from_json(as_text(key), value) for key, value in raw.items()]

    async def forget_offers(self, event_id: str, offer_ids: Sequence[str]) -> None:
        """Ended offers PostgreSQL has recorded: Redis need not keep them."""
        if offer_ids:
            await self._redis.hdel(event_keys(event_id).offers, *offer_ids)

    async def entries(self, event_id: str) -> dict[str, LiveEntry]:
        """user_id -> the user's live entry in Redis."""
        raw: dict[Any, Any] = await self._redis.hgetall(event_keys(event_id).wl_entries)
        out = {}
        for key, value in raw.items():
            user_id, record = as_text(key), orjson.loads(value)
            out[user_id] = LiveEntry(
                user_id=user_id,
                entry_id=record["entry_id"],
                zone_id=record.get("zone") or "",
                quantity=int(record["qty"]),
                position=int(record["position"]),
                offer_id=record.get("offer"),
            )
        return out

    async def rank(self, event_id: str, user_id: str) -> int | None:
        """0-based place in the line (entries holding an offer included), None if absent."""
        found: Any = await self._redis.zrank(event_keys(event_id).waitlist, user_id)
        return None if found is None else int(found)
