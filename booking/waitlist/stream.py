"""The buyer's waitlist stream (SSE): `place` at once (position or the offer held), then an
`offer` event the moment the waitlist worker records an offer for them.

It listens on the buyer's per-user channel of the event (`QueueKeys.user_channel`, the one the
queue's passes use: the queue's stream ignores these messages and this one ignores passes), over
the process's one pub/sub connection. State is bounded: at most one pending `place` and one
pending `offer` (the latest wins), so a slow reader never grows memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from booking.inventory.keys import queue_keys
from booking.pubsub import Hub
from booking.sse import Ending, frame

OFFER_MESSAGE = "waitlist_offer"


def offer_message(offer: dict[str, Any]) -> bytes:
    """What the worker publishes on the user's channel (offer: `service.offer_body`)."""
    return orjson.dumps({"type": OFFER_MESSAGE, "offer": offer})


class WaitlistStream:
    """A `booking.sse.FrameSource` and a `booking.pubsub.Listener`."""

    def __init__(self, hub: Hub, event_id: str, user_id: str) -> None:
        self.hub = hub
        self.event_id = event_id
        self.user_id = user_id
        self.channels: set[str] = set()
        self._place: dict[str, Any] | None = None
        self._offer: dict[str, Any] | None = None
        self._next_id = 1
        self._ready: Callable[[], None] | None = None

    async def subscribe(self) -> None:
        """Returns once Redis confirmed it: the state read after it cannot miss an offer."""
        await self.hub.subscribe(self, [queue_keys(self.event_id).user_channel(self.user_id)])

    def show(self, first: dict[str, Any]) -> None:
        """The state read after subscribing: the stream's first event."""
        self._place = first

    # pubsub.Listener

    def offer(self, message: tuple[str, bytes]) -> None:
        data = orjson.loads(message[1])
        if data.get("type") == OFFER_MESSAGE:
            self._offer = data["offer"]
            self._wake()

    def mark_missed(self) -> None:
        """A lost offer push is still in GET /events/{id}/waitlist and in the email."""

    # sse.FrameSource

    def listen(self, ready: Callable[[], None]) -> None:
        self._ready = ready
        if self._place is not None:
            ready()

    def take(self) -> bytes | None:
        frames = []
        if self._place is not None:
            frames.append(self._frame("place", self._place))
            self._place = None
        if self._offer is not None:
            frames.append(self._frame("offer", self._offer))
            self._offer = None
        return b"".join(frames)

    def close(self, ending: Ending) -> None:
        self.hub.unsubscribe(self)

    def _frame(self, event: str, data: dict[str, Any]) -> bytes:
        encoded = frame(event, orjson.dumps(data), self._next_id)
        self._next_id += 1
        return encoded

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready()
