"""Moving one slot between masters of a live cluster the way `redis-cli --cluster reshard` does
(IMPORTING/MIGRATING, MIGRATE of its keys in small batches, then SETSLOT NODE everywhere), so
clients meet MOVED, ASK and TRYAGAIN while it runs."""

from __future__ import annotations

import time

import redis

from tests.lua.test_cluster_slots import key_slot


def _node(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)


def primary_ports(seed_url: str) -> list[int]:
    """The ports of the masters serving slots now, as the seed node sees them."""
    seed = redis.Redis.from_url(seed_url, socket_timeout=5)
    try:
        ranges = seed.execute_command("CLUSTER SLOTS")
        return sorted({int(primary[1]) for _start, _end, primary, *_ in ranges})
    finally:
        seed.close()


def owner_port(seed_url: str, key: str) -> int:
    slot = key_slot(key)
    seed = redis.Redis.from_url(seed_url, socket_timeout=5)
    try:
        for start, end, primary, *_ in seed.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
    finally:
        seed.close()
    raise AssertionError(f"no node serves slot {slot}")


def move_slot(
    seed_url: str, slot: int, source: int, target: int, *, batch: int = 5, pause_s: float = 0.01
) -> int:
    """Moves `slot` from the master on `source` to the one on `target`; returns keys moved."""
    src, dst = _node(source), _node(target)
    moved = 0
    try:
        src_id = src.execute_command("CLUSTER MYID")
        dst_id = dst.execute_command("CLUSTER MYID")
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        time.sleep(pause_s)  # pauses: the windows in which clients see ASK / TRYAGAIN
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause_s)
        # The new owner first, then the old one, then the rest (as redis-cli does): the old
        # owner must not send clients to a target that does not yet know it owns the slot.
        rest = [port for port in primary_ports(seed_url) if port not in (target, source)]
        for port in (target, source, *rest):
            owner = _node(port)
            try:
                owner.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
            finally:
                owner.close()
    finally:
        src.close()
        dst.close()
    return moved
