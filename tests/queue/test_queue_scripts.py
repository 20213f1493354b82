"""Cluster safety of the queue scripts: every key shares the event's slot, and scripts reach keys
only through KEYS, bound in QUEUE_SCRIPT_KEYS order (the same discipline as tests/lua)."""

from __future__ import annotations

import re

import pytest

import lua
from booking.inventory.keys import QUEUE_SCRIPT_KEYS, queue_keys
from booking.queue.store import QUEUE_SCRIPT_NAMES
from tests.lua.test_cluster_slots import CALL, FORBIDDEN, key_slot


def test_every_queue_script_is_listed() -> None:
    assert {name for name in lua.names() if name.startswith("queue_")} == set(QUEUE_SCRIPT_NAMES)


@pytest.mark.parametrize("event_id", ["e1", "7f0c2a8e-1b2c-4d3e-9f00-0123456789ab"])
def test_queue_keys_share_the_event_slot(event_id: str) -> None:
    keys = queue_keys(event_id)
    names = list(keys.script_keys())
    assert len(set(names)) == len(names)
    assert {key_slot(name) for name in names} == {key_slot(f"{{ev:{event_id}}}")}


def test_user_pass_channels_spread_over_the_slots() -> None:
    """A user's pass channel carries no hash tag: one event's buyers land on every shard."""
    keys = queue_keys("e1")
    slots = {key_slot(keys.user_channel(f"user-{n}")) for n in range(1000)}
    assert len(slots) > 900
    assert all(0 <= slot < 16384 for slot in slots)


@pytest.mark.parametrize("name", QUEUE_SCRIPT_NAMES)
def test_queue_scripts_touch_keys_only_through_KEYS(name: str) -> None:
    source = lua.source(name)
    for header in ("KEYS", "ARGV", "Returns", "Errors"):
        assert re.search(rf"^{header}\b", source, re.M), f"{name}.lua header lacks {header}"
    bound = re.findall(r"^local ([A-Z_]+) = KEYS\[(\d+)\]$", source, re.M)
    assert bound and len(bound) == len(re.findall(r"KEYS\[", source))
    for local, index in bound:
        assert QUEUE_SCRIPT_KEYS[int(index) - 1].upper() == local, f"{name}: {local}"
    calls = CALL.findall(source)
    assert len(calls) == source.count("redis.call(") + source.count("redis.pcall(")
    for command, first_arg in calls:
        assert command not in FORBIDDEN, f"{name}.lua calls {command}"
        assert first_arg in {local for local, _ in bound}, f"{name}.lua: {command} on {first_arg}"
