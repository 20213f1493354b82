"""Seats in Redis: the key layout (`keys`), the Lua scripts' facade (`scripts.Scripts`), the
values they exchange (`records`) and what their error codes mean (`lua_errors`)."""

from booking.inventory.keys import LIVE_EVENTS, event_keys
from booking.inventory.records import ReleaseReason
from booking.inventory.scripts import Scripts, epoch_ms

__all__ = ["LIVE_EVENTS", "ReleaseReason", "Scripts", "epoch_ms", "event_keys"]
