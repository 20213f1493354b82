"""Whole-number settings read from the environment, refused by name when they make no sense."""

from __future__ import annotations

from collections.abc import Mapping


def env_count(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    """The integer `env[name]` (default when unset or empty); ValueError naming `name` when it
    is not a whole number of at least `minimum`."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"{name} must be a whole number of at least {minimum}, not {raw!r}"
        ) from None
    if value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value}")
    return value


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """`env[name]` as 0/1 (unset or empty: 0); ValueError naming `name` for anything else."""
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be 0 or 1, not {raw!r}")
