"""Redis key layout: the only place key names are spelled.

Every key of one event carries the hash tag `{ev:<event_id>}`, so all of them hash to one
Redis Cluster slot and every Lua script runs unchanged on a cluster. Each script receives the
event's whole fixed key set, in `SCRIPT_KEYS` order, so `KEYS[n]` means the same thing in every
`lua/*.lua` file and no script ever builds a key name.

Per-event keys (hash tag omitted below):
- `meta` hash: event_id, status (draft|on_sale|closed), sale_starts_ms, max_per_user (0 = no
  limit), queue_enabled (0|1), currency.
- `inv` hash: per zone `<zone_id>:kind` (ga|seated), `:capacity`, `:available`, `:held`, `:sold`,
  `:suspended`, `:price`; event totals `total:capacity`, `total:available`, `total:held`,
  `total:sold`, `total:suspended`. Always available + held + sold + suspended == capacity.
- `seats` hash: `<zone_id>:<label>` -> "" when free, the booking id when held or sold, "S" when
  suspended.
- `holds` hash: booking_id -> JSON hold record (see `booking.inventory.records.Hold`).
- `expiry` zset: booking_id scored by deadline_ms, live (RESERVED) holds only.
- `users` hash: user_id -> tickets held + confirmed.
- `idem` hash: `<user_id>:<idempotency_key>` -> `<booking_id>|<fingerprint>`.
- `pending` hash: booking_id -> 1 until the hold is durable in PostgreSQL.
- `passes` hash: pass_id -> `<user_id>|<expires_ms>`; `passes:active` zset pass_id -> expires_ms.
- `feed`: the pub/sub channel of seat updates (a channel, not a key; it carries the tag too so
  a sharded-pubsub move is a one-word change).
- The waitlist (`booking/waitlist/`): `waitlist` zset user_id -> join position (PostgreSQL's);
  `waitlist:entries` hash user_id -> JSON {entry_id, zone ("" = any zone), qty, position,
  offer?}; `waitlist:waiting` hash zone_id | "*" -> entries waiting without an offer;
  `waitlist:offers` hash offer_id -> JSON offer (status OUTSTANDING | TAKEN | LAPSED | WITHDRAWN,
  kept once ended until PostgreSQL has recorded it); `waitlist:offers:expiry` zset outstanding
  offer_id -> expires_ms; `waitlist:withheld` zset of the free withheld seats `<zone>:<label>`
  (score 0). In `inv`, `<zone>:withheld` counts seats held back for the waitlist (offered or
  not; `total:withheld` too) and `<zone>:offered` the part promised by outstanding offers; a
  withheld seat's owner in `seats` is "W". Then available + held + sold + suspended + withheld
  == capacity.

Global keys (never touched by a script): `br:events:live` zset of event ids with inventory;
`br:waitlists:live` zset of event ids whose waitlist may have work (entries, offers, withheld
seats).

Not touched by a script either: `live` hash (`live_figures_key`): booking process id -> JSON of
that process's live figures for the event (booking.live_figures), refreshed every second and
expiring a few seconds after the last process stopped writing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

PREFIX = "br"
LIVE_EVENTS = f"{PREFIX}:events:live"
WAITLIST_EVENTS = f"{PREFIX}:waitlists:live"

# The KEYS order every script receives; each lua file starts with the matching locals.
SCRIPT_KEYS: tuple[str, ...] = (
    "meta",
    "inv",
    "seats",
    "holds",
    "expiry",
    "users",
    "idem",
    "pending",
    "passes",
    "passes_active",
    "feed",
    "waitlist",
    "wl_entries",
    "wl_waiting",
    "offers",
    "offers_expiry",
    "withheld",
)


def hash_tag(event_id: str) -> str:
    return f"{{ev:{event_id}}}"


@dataclass(frozen=True, slots=True)
class EventKeys:
    event_id: str
    meta: str
    inv: str
    seats: str
    holds: str
    expiry: str
    users: str
    idem: str
    pending: str
    passes: str
    passes_active: str
    feed: str
    waitlist: str
    wl_entries: str
    wl_waiting: str
    offers: str
    offers_expiry: str
    withheld: str

    @classmethod
    def of(cls, event_id: str) -> EventKeys:
        if not event_id or "{" in event_id or "}" in event_id:
            raise ValueError(f"event id unusable in a hash tag: {event_id!r}")
        base = f"{PREFIX}:{hash_tag(event_id)}"
        return cls(
            event_id=event_id,
            meta=f"{base}:meta",
            inv=f"{base}:inv",
            seats=f"{base}:seats",
            holds=f"{base}:holds",
            expiry=f"{base}:expiry",
            users=f"{base}:users",
            idem=f"{base}:idem",
            pending=f"{base}:pending",
            passes=f"{base}:passes",
            passes_active=f"{base}:passes:active",
            feed=f"{base}:feed",
            waitlist=f"{base}:waitlist",
            wl_entries=f"{base}:waitlist:entries",
            wl_waiting=f"{base}:waitlist:waiting",
            offers=f"{base}:waitlist:offers",
            offers_expiry=f"{base}:waitlist:offers:expiry",
            withheld=f"{base}:waitlist:withheld",
        )

    def script_keys(self) -> tuple[str, ...]:
        """The KEYS list of every inventory script (order: `SCRIPT_KEYS`)."""
        return tuple(getattr(self, name) for name in SCRIPT_KEYS)

    def stored(self) -> tuple[str, ...]:
        """Every key that holds data (the feed channel is not one)."""
        return tuple(getattr(self, name) for name in SCRIPT_KEYS if name != "feed")


@lru_cache(maxsize=4096)
def event_keys(event_id: str) -> EventKeys:
    """Cached `EventKeys.of`: the hot path builds the same few events' keys over and over."""
    return EventKeys.of(event_id)


@lru_cache(maxsize=4096)
def script_keys(event_id: str) -> tuple[str, ...]:
    return event_keys(event_id).script_keys()


# The virtual queue. Its keys share the event's hash tag; its scripts (`lua/queue_*.lua`) receive
# them in `QUEUE_SCRIPT_KEYS` order:
# - `q` hash: event_id, open (0|1), sale_starts_ms, max_concurrent, release_per_tick, pass_ttl_ms,
#   paused (0|1), seed (hex), seq (join counter), shuffled (0|1), sold_out (0|1), next_tick_ms,
#   last_tick_ms, tick_ms, rate (EWMA of admitted users/s), admitted_total, dirty (0|1).
# - `q:waiting` zset: user_id scored by join order (shuffled pre-queue 1..n, later joiners
#   10^12 + seq); `q:pre` zset: users who joined before the sale opened.
# - `q:admitted` hash: user_id -> `<pass_id>|<expires_ms>|<signed pass>`.
# - `q:feed` channel (one message per tick: progress, sold_out).
# A user's pass goes out on `br:q:user:<event_id>:<user_id>`: no hash tag, so the channels of one
# event's buyers spread over every slot (on a cluster, over every shard) instead of piling onto
# the event's shard; the admission script returns who was admitted and its caller publishes.
OPEN_QUEUES = f"{PREFIX}:queues:open"  # global zset of event ids whose queue may admit
QUEUE_SCRIPT_KEYS: tuple[str, ...] = (
    "queue",
    "waiting",
    "pre",
    "admitted",
    "passes",
    "passes_active",
    "inv",
    "feed",
)


@dataclass(frozen=True, slots=True)
class QueueKeys:
    event_id: str
    queue: str
    waiting: str
    pre: str
    admitted: str
    passes: str
    passes_active: str
    inv: str
    feed: str
    user_channel_prefix: str

    @classmethod
    def of(cls, event_id: str) -> QueueKeys:
        inventory = event_keys(event_id)
        base = f"{PREFIX}:{hash_tag(event_id)}:q"
        return cls(
            event_id=event_id,
            queue=base,
            waiting=f"{base}:waiting",
            pre=f"{base}:pre",
            admitted=f"{base}:admitted",
            passes=inventory.passes,
            passes_active=inventory.passes_active,
            inv=inventory.inv,
            feed=f"{base}:feed",
            user_channel_prefix=f"{PREFIX}:q:user:{event_id}:",
        )

    def user_channel(self, user_id: str) -> str:
        return self.user_channel_prefix + user_id

    def script_keys(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in QUEUE_SCRIPT_KEYS)

    def stored(self) -> tuple[str, ...]:
        """The queue's own data keys (passes and inventory belong to the event)."""
        return (self.queue, self.waiting, self.pre, self.admitted)


@lru_cache(maxsize=4096)
def queue_keys(event_id: str) -> QueueKeys:
    return QueueKeys.of(event_id)


def live_figures_key(event_id: str) -> str:
    """The event's hash of per-process live figures (watchers, feed rate, pass delivery)."""
    EventKeys.of(event_id)  # the same check of the id as every other key of the event
    return f"{PREFIX}:{hash_tag(event_id)}:live"
