"""The Lua scripts, one file each, shipped as package data and loaded by name.

A line `--@include _name` is replaced by `lua/_name.lua` when a script is loaded: text several
scripts share (the KEYS bindings, the give-a-hold-back block) lives once. Files whose name
starts with `_` are such parts, never scripts of their own.

Scripts publish with `redis.call('PUBLISH', ...)`. For a Redis Cluster the text is loaded with
`SPUBLISH` instead (sharded pub/sub: the message stays inside the shard that owns the channel's
slot, which is the event's, and a script may only touch its own slot), so each file exists once
and reads the same in both modes.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"^--@include (_\w+)[ \t]*$", re.M)
_PUBLISH = "redis.call('PUBLISH', "


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


@cache
def source(name: str, *, cluster: bool = False) -> str:
    """The text of `lua/<name>.lua`, its includes expanded; for a cluster, publishing sharded."""
    text = _INCLUDE.sub(lambda match: _read(match.group(1)).rstrip("\n"), _read(name))
    return text.replace(_PUBLISH, "redis.call('SPUBLISH', ") if cluster else text


def names() -> list[str]:
    return sorted(
        entry.name.removesuffix(".lua")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("_")
    )
