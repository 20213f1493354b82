"""The sold-out wall: a booking process answers a sold-out event's reserves itself.

In the opening minute of a drop most reserves arrive after the last seat went: each used to
cost a Redis round trip (reserve.lua) to learn `SOLD_OUT`. Once Redis has answered that, the
process looks at the event once (lua/sold_out_look.lua, after subscribing to its feed channel)
and, when every seat is gone, the sale is open, there is no queue (a pass is checked before
availability) and the idempotency fields are few enough to hold, raises a wall for the event:
a reserve of a general-admission zone with neither seats nor waitlist offer, whose
(user, Idempotency-Key) the event has never seen, gets the same `sold_out` answer the script
would give without leaving the process. Anything else goes to Redis as before.

The wall comes down (and stays down until Redis answers `SOLD_OUT` again) when:
- a feed message says a zone has seats on sale (`available` > 0: a release, a lapse, the
  waitlist putting seats back) or a hold was made (SEAT_RESERVED: with a waitlist offer, from
  withheld seats, it adds an idempotency field the wall does not know); seats withheld for
  the waitlist are not on sale, so their SEAT_WITHHELD keeps it up;
- the pub/sub connection may have lost messages (the hub's `mark_missed`);
- a look every `RECHECK_S` finds anything changed (status, sale start, queue, seats on sale,
  the number of idempotency fields), or fails: that covers a closed sale and a rebuild, which
  publish nothing, within `RECHECK_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import orjson
from redis.exceptions import RedisError

from booking.inventory.keys import event_keys
from booking.inventory.records import SoldOutLook
from booking.inventory.scripts import Scripts
from booking.pubsub import Hub

log = logging.getLogger(__name__)

RECHECK_S = 0.5
RETRY_AFTER_S = 1.0  # at most one look per event this often while the wall is down
# A wall raised again within FLAP_S of the last raise (seats lapsing and being retaken in a
# drop's tail) doubles the wait before the next look, up to MAX_RETRY_S: each look of a large
# event reads all its idempotency fields.
FLAP_S = 10.0
MAX_RETRY_S = 30.0
MAX_FIELDS = 50_000  # more idempotency fields than this: no wall (memory and the look's cost)


def keeps_wall(data: bytes) -> bool:
    """A feed message that changes nothing a walled reserve's answer depends on."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(message, dict) or message.get("type") != "seat_update":
        return False
    available = message.get("available")
    return (
        message.get("event_type") != "SEAT_RESERVED"
        and isinstance(available, int)
        and available <= 0
    )


class _Wall:
    """One event's wall; a hub listener of the event's feed channel."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        self.channels: set[str] = set()
        self.look: SoldOutLook | None = None  # None = down
        self.spoiled = False  # a message came that the look being taken may not show
        self.busy = False
        self.tried = -MAX_RETRY_S
        self.retry_s = RETRY_AFTER_S
        self.raised_at = -FLAP_S

    def offer(self, message: tuple[str, bytes]) -> None:
        if not keeps_wall(message[1]):
            self.down()

    def mark_missed(self) -> None:
        self.down()

    def down(self) -> None:
        self.look = None
        self.spoiled = True


class SoldOutWall:
    def __init__(
        self,
        hub: Hub,
        scripts: Scripts,
        *,
        recheck_s: float = RECHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._scripts = scripts
        self._recheck_s = recheck_s
        self._clock = clock
        self._walls: dict[str, _Wall] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def refuses(self, event_id: str, zone_id: str, field: str, now_ms: int) -> bool:
        """True: this reserve (general admission, no seats, no offer; `field` is
        `<user>:<idempotency key>`) is answered `sold_out` without asking Redis."""
        wall = self._walls.get(event_id)
        if wall is None:
            return False
        look = wall.look
        return (
            look is not None
            and zone_id in look.ga_zones
            and field not in look.idem_fields
            and now_ms >= look.sale_starts_ms
        )

    def is_up(self, event_id: str) -> bool:
        wall = self._walls.get(event_id)
        return wall is not None and wall.look is not None

    def sold_out_seen(self, event_id: str) -> None:
        """Redis answered a reserve of this event `SOLD_OUT`: look whether to wall it."""
        wall = self._walls.get(event_id)
        if wall is None:
            wall = self._walls[event_id] = _Wall(event_id)
        now = self._clock()
        if wall.look is not None or wall.busy or now - wall.tried < wall.retry_s:
            return
        wall.tried, wall.busy = now, True
        task = asyncio.get_running_loop().create_task(self._raise(wall))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _raise(self, wall: _Wall) -> None:
        try:
            if not wall.channels:
                await self._hub.subscribe(wall, [event_keys(wall.event_id).feed])
            wall.spoiled = False
            look = await self._scripts.sold_out_look(wall.event_id, max_fields=MAX_FIELDS)
            if wall.spoiled or not _walls(look):
                return
            wall.look = look
            now = self._clock()
            flapping = now - wall.raised_at < FLAP_S
            wall.retry_s = min(wall.retry_s * 2, MAX_RETRY_S) if flapping else RETRY_AFTER_S
            wall.raised_at = now
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("no sold-out wall for %s: %s", wall.event_id, exc)
            return
        finally:
            wall.busy = False
        await self._keep(wall, look)

    async def _keep(self, wall: _Wall, raised: SoldOutLook) -> None:
        while wall.look is raised:
            await asyncio.sleep(self._recheck_s)
            if wall.look is not raised:
                return
            try:
                look = await self._scripts.sold_out_look(wall.event_id, max_fields=0)
            except (RedisError, OSError, TimeoutError):
                wall.down()
                return
            if wall.look is raised and not look.same_sale(raised):
                wall.down()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for wall in self._walls.values():
            self._hub.unsubscribe(wall)
            wall.down()


def _walls(look: SoldOutLook) -> bool:
    return (
        look.status == "on_sale"
        and not look.queue_enabled
        and look.available <= 0
        and look.idem_count == len(look.idem_fields)
    )
