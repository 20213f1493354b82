"""Reading a Redis Cluster node's view: `nodes.conf`, CLUSTER INFO, CLUSTER SLOTS."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

SLOTS = 16384


def _node_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip() and not line.startswith("vars ")]


def nodes_conf_peers(path: Path) -> int:
    """How many nodes (itself included) a node's nodes.conf knows; 0 when there is none."""
    return len(_node_lines(path))


def nodes_conf_ports(path: Path) -> tuple[int, int] | None:
    """(port, bus port) the node recorded for itself: `<id> ip:port@bus[,host] myself,..`."""
    for line in _node_lines(path):
        fields = line.split()
        if len(fields) > 2 and "myself" in fields[2].split(","):
            address = fields[1].split(",", 1)[0]
            port, _, bus = address.rsplit(":", 1)[-1].partition("@")
            if port.isdigit() and bus.isdigit():
                return int(port), int(bus)
    return None


def cluster_info(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def cluster_problem(
    info: Mapping[str, str], replication: Mapping[str, Any], total: int
) -> str | None:
    """What keeps one node from being healthy (None when it is): its CLUSTER INFO and its
    INFO replication fields."""
    if info.get("cluster_state") != "ok":
        return f"cluster_state:{info.get('cluster_state')}"
    if info.get("cluster_known_nodes") != str(total):
        return f"knows {info.get('cluster_known_nodes')} of {total} nodes"
    if info.get("cluster_slots_assigned") != str(SLOTS):
        return f"{info.get('cluster_slots_assigned')} of {SLOTS} slots assigned"
    if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
        return "replica not in sync with its master yet"
    return None


def slot_ranges(reply: Any) -> list[tuple[int, int, int]]:
    """CLUSTER SLOTS as sorted (first slot, last slot, master port) triples."""
    return sorted((int(entry[0]), int(entry[1]), int(entry[2][1])) for entry in reply)
