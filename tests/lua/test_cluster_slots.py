"""Cluster safety: every script's keys share one hash slot, and scripts reach keys only via KEYS.

Redis refuses CLUSTER KEYSLOT outside cluster mode, so the slot is computed here per the Redis
Cluster specification (CRC16/XMODEM of the hash tag, mod 16384).
"""

from __future__ import annotations

import re

import pytest

import lua
from booking.inventory.keys import SCRIPT_KEYS, event_keys, script_keys
from booking.inventory.scripts import SCRIPT_NAMES
from booking.queue.store import QUEUE_SCRIPT_NAMES


def crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    raw = key.encode()
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc16_xmodem(raw) % 16384


def test_keyslot_matches_the_spec_vectors() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3
    assert key_slot("foo") == 12182
    assert key_slot("somekey") == 11058
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    assert key_slot("foo{}{bar}") == key_slot("foo{}{bar}") != key_slot("bar")


def test_every_script_is_covered() -> None:
    # The queue scripts have the same checks in tests/queue/test_queue_scripts.py; the gateway's
    # rate limiter keeps no event keys.
    assert set(lua.names()) - {"rate_limit"} - set(QUEUE_SCRIPT_NAMES) == set(SCRIPT_NAMES)


@pytest.mark.parametrize("event_id", ["e1", "7f0c2a8e-1b2c-4d3e-9f00-0123456789ab", "x" * 60])
def test_all_keys_of_an_event_share_one_slot(event_id: str) -> None:
    keys = script_keys(event_id)
    assert len(keys) == len(SCRIPT_KEYS) == len(set(keys))
    assert {key_slot(key) for key in keys} == {key_slot(f"{{ev:{event_id}}}")}
    assert keys == event_keys(event_id).script_keys()


def test_event_ids_that_would_break_the_tag_are_refused() -> None:
    for bad in ("", "a}b", "a{b"):
        with pytest.raises(ValueError):
            event_keys(bad)


CALL = re.compile(r"redis\.p?call\(\s*'([A-Z]+)'\s*,\s*([^,)\s]+)")
FORBIDDEN = {"KEYS", "SCAN", "HSCAN", "SSCAN", "ZSCAN", "RANDOMKEY", "TIME", "EVAL", "EVALSHA"}


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_scripts_touch_keys_only_through_KEYS(name: str) -> None:
    source = lua.source(name)
    for header in ("KEYS", "ARGV", "Returns", "Errors"):
        assert re.search(rf"^{header}\b", source, re.M), f"{name}.lua header lacks {header}"

    prelude = [f"local {key.upper()} = KEYS[{n}]" for n, key in enumerate(SCRIPT_KEYS, 1)]
    assert "\n".join(prelude) in source, f"{name}.lua must bind KEYS in SCRIPT_KEYS order"
    assert len(re.findall(r"KEYS\[", source)) == len(prelude)

    calls = CALL.findall(source)
    assert len(calls) == source.count("redis.call(") + source.count("redis.pcall(")
    key_names = {key.upper() for key in SCRIPT_KEYS}
    for command, first_arg in calls:
        assert command not in FORBIDDEN, f"{name}.lua calls {command}"
        assert first_arg in key_names, f"{name}.lua: {command} on {first_arg}, not a KEYS entry"
