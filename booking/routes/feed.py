"""The live availability feed over SSE (GET /events/{id}/availability/stream) and WebSocket
(/events/{id}/live). Both are public; a token is optional, but a bad one closes the WebSocket
with 1008. Rooms, batching and slow-client handling live in `booking.feed`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from booking.errors import BookingError, NotFoundError, UnauthorizedError
from booking.feed import SEND_TIMEOUT_S, LiveFeed, Watcher, error_message
from booking.http import services
from booking.sse import Ending, EventStream

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
MAX_REQUEST_CHARS = 4096
CLOSE_POLICY = 1008  # bad token
CLOSE_TRY_AGAIN = 1013  # dropped for being too slow


def _event_id(raw: Any) -> str | None:
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        return None


class FeedStream:
    """A watcher as an SSE frame source; whatever ends the response (client gone, too slow,
    shutdown) closes the watcher, and one too slow to take a write is counted as dropped."""

    def __init__(self, feed: LiveFeed, watcher: Watcher) -> None:
        self.feed = feed
        self.watcher = watcher

    def listen(self, ready: Callable[[], None]) -> None:
        self.watcher.on_ready = ready

    def take(self) -> bytes | None:
        batches = self.watcher.take_pending()
        if not batches:
            return None if self.watcher.ended else b""
        self.watcher.sent.inc(sum(len(batch.messages) for batch in batches))
        return b"".join(batch.sse for batch in batches)

    def close(self, ending: Ending) -> None:
        if ending == "too_slow":
            self.watcher.drop()
        self.feed.close(self.watcher)


async def availability_stream(request: Request) -> EventStream:
    feed: LiveFeed = services(request).feed
    event_id = _event_id(request.path_params["event_id"])
    if event_id is None:
        raise NotFoundError("no such event")
    watcher = feed.watcher("sse")
    try:
        await feed.watch(watcher, event_id)
    except BaseException:
        feed.close(watcher)
        raise
    return EventStream(
        FeedStream(feed, watcher), heartbeat_s=HEARTBEAT_S, send_timeout_s=SEND_TIMEOUT_S
    )


def _token_is_bad(websocket: WebSocket) -> bool:
    token = websocket.query_params.get("token")
    authorization = f"Bearer {token}" if token else websocket.headers.get("authorization")
    if not authorization:
        return False
    try:
        services(websocket).auth.identify(authorization)
    except UnauthorizedError:
        return True
    return False


async def live(websocket: WebSocket) -> None:
    await websocket.accept()
    if _token_is_bad(websocket):
        await websocket.close(code=CLOSE_POLICY, reason="invalid token")
        return
    feed: LiveFeed = services(websocket).feed
    watcher = feed.watcher("ws")
    sender = asyncio.create_task(_send_frames(websocket, watcher))
    receiver = asyncio.create_task(
        _serve_requests(websocket, feed, watcher, websocket.path_params["event_id"])
    )
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        feed.close(watcher)
        for task in (sender, receiver):
            task.cancel()
        for task in (sender, receiver):
            with contextlib.suppress(BaseException):
                await task


async def _send_frames(websocket: WebSocket, watcher: Watcher) -> None:
    """The socket's only writer: updates and replies leave in the order they were pushed."""
    while True:
        batches = await watcher.take()
        if not batches:
            break
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                for batch in batches:
                    for frame in batch.frames:
                        await websocket.send_text(frame)
        except TimeoutError:
            watcher.drop()
            break
        watcher.sent.inc(sum(len(batch.messages) for batch in batches))
    if watcher.dropped and websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSE_TRY_AGAIN, reason="too slow")


async def _serve_requests(
    websocket: WebSocket, feed: LiveFeed, watcher: Watcher, path_event_id: str
) -> None:
    await _subscribe(feed, watcher, path_event_id)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            watcher.reply(error_message("invalid_request", "send JSON text frames"))
        elif len(text) > MAX_REQUEST_CHARS:
            watcher.reply(error_message("invalid_request", "message too long"))
        else:
            await _handle(feed, watcher, text)


async def _handle(feed: LiveFeed, watcher: Watcher, text: str) -> None:
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        watcher.reply(error_message("invalid_request", "not JSON"))
        return
    kind = request.get("type") if isinstance(request, dict) else None
    if kind == "ping":
        watcher.reply({"type": "pong"})
        return
    if kind not in ("subscribe", "unsubscribe", "get_availability"):
        watcher.reply(error_message("invalid_request", f"unknown message type {str(kind)[:40]!r}"))
        return
    event_id = _event_id(request.get("event_id"))
    if event_id is None:
        watcher.reply(error_message("invalid_request", "event_id must be a UUID"))
    elif kind == "subscribe":
        await _subscribe(feed, watcher, event_id)
    elif kind == "unsubscribe":
        feed.unwatch(watcher, event_id)
    else:
        try:
            watcher.reply(await feed.availability(event_id))
        except BookingError as exc:
            watcher.reply(error_message(exc.code, str(exc), event_id=event_id))


async def _subscribe(feed: LiveFeed, watcher: Watcher, raw_event_id: str) -> None:
    event_id = _event_id(raw_event_id)
    if event_id is None:
        watcher.reply(error_message("not_found", "no such event"))
        return
    try:
        await feed.watch(watcher, event_id)
    except BookingError as exc:
        watcher.reply(error_message(exc.code, str(exc), event_id=event_id))
    except Exception:
        log.exception("live feed subscription to %s failed", event_id)
        watcher.reply(error_message("service_unavailable", "try again", event_id=event_id))


routes = [
    Route("/events/{event_id}/availability/stream", availability_stream, methods=["GET"]),
    WebSocketRoute("/events/{event_id}/live", live),
]
