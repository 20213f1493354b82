"""A local Redis Cluster on loopback: N masters and R replicas per master, formed with plain
commands (CLUSTER ADDSLOTSRANGE / MEET / REPLICATE), so no redis-cli is needed.

Node i lives in `<server_dir>/node-<i+1>/` with its own AOF and `nodes.conf`. Node i listens on
`base + i` and its cluster bus on `base + N + i`: the bus is given explicitly (`cluster-port`)
because the default (port + 10000) may fall outside the port range. A directory whose nodes
already formed a cluster is reused as it is: each node restarts on the port its `nodes.conf`
records and finds its peers there.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from stack.processes import free_port_block, port_is_free
from stack.servers.base import (
    LaunchPlan,
    LocalServer,
    ServerStartError,
    ensure_local_server,
    refuse_other_binary,
)
from stack.servers.cluster_state import (
    SLOTS,
    cluster_info,
    cluster_problem,
    nodes_conf_peers,
    nodes_conf_ports,
    slot_ranges,
)
from stack.servers.redis import DATA_FILES, find_redis_server, redis_version

DEFAULT_NODE_TIMEOUT_MS = 2000
FORM_TIMEOUT_S = 30.0
NODES_CONF = "nodes.conf"


@dataclass(frozen=True)
class NodeInfo:
    port: int
    role: str  # "master", "replica", or "down" while the process is not running
    pid: int


@dataclass
class LocalCluster:
    """The cluster's node servers (masters first as formed; roles change on failover)."""

    servers: list[LocalServer]
    masters: int
    replicas: int
    reused: bool

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    @property
    def url(self) -> str:
        """The seed node's URL (the first master as formed): cluster clients discover the rest."""
        return f"redis://127.0.0.1:{self.servers[0].port}/0"

    def server(self, port: int) -> LocalServer:
        for server in self.servers:
            if server.port == port:
                return server
        raise KeyError(f"no cluster node on port {port}")

    def nodes(self) -> list[NodeInfo]:
        """Each node's port, current role (asked of the node itself) and pid."""
        return [NodeInfo(s.port, _role(s), s.pid) for s in self.servers]

    def wait_ok(self, timeout_s: float = FORM_TIMEOUT_S) -> None:
        """Wait until every running node reports cluster_state:ok, knows every node, agrees on
        the slot map, and every running replica is in sync; ServerStartError after timeout_s."""
        _wait_healthy(self.servers, len(self.servers), timeout_s)

    def stop(self) -> None:
        """Replicas first: a master told to stop waits for its replicas to catch up."""
        roles = {server.port: _role(server) for server in self.servers}
        replicas = [s for s in self.servers if roles[s.port] == "replica"]
        for group in (replicas, [s for s in self.servers if s not in replicas]):
            threads = [threading.Thread(target=server.stop) for server in group]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()


def start_local_cluster(
    server_dir: Path,
    *,
    masters: int = 3,
    replicas: int = 0,
    preferred_port: int = 0,
    env: Mapping[str, str] | None = None,
    node_timeout_ms: int = DEFAULT_NODE_TIMEOUT_MS,
) -> LocalCluster:
    """Start (or reuse) a loopback cluster under `server_dir` and wait until it is healthy.

    `preferred_port` is the first node's port when it and the following 2 * nodes - 1 ports are
    free; otherwise a free block is used. A formed directory keeps its recorded ports.
    """
    if masters < 3:
        raise ServerStartError(f"a Redis Cluster needs at least 3 masters, not {masters}")
    if replicas < 0:
        raise ServerStartError(f"replicas per master must be 0 or more, not {replicas}")
    total = masters * (1 + replicas)
    found = find_redis_server(env)
    version = redis_version(found.path)
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 7:
        raise ServerStartError(
            f"{found.path} is version {version}: a local cluster needs Redis/Valkey 7 or newer "
            "(CLUSTER ADDSLOTSRANGE, cluster-port)"
        )
    server_dir.mkdir(parents=True, exist_ok=True)
    node_dirs = [server_dir / f"node-{i + 1}" for i in range(total)]
    formed = _formed_ports(server_dir, node_dirs, total)
    ports = formed or _port_block(preferred_port, 2 * total)
    servers: list[LocalServer] = []
    try:
        for index, node_dir in enumerate(node_dirs):
            data_port, bus_port = ports[index], ports[total + index]
            servers.append(
                _start_node(
                    index, node_dir, data_port, bus_port, found.path, version, node_timeout_ms
                )
            )
        if formed is None:
            _form(servers, masters, replicas)
        _wait_healthy(servers, total, FORM_TIMEOUT_S)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return LocalCluster(servers, masters, replicas, reused=formed is not None)


def _formed_ports(server_dir: Path, node_dirs: list[Path], total: int) -> list[int] | None:
    """The data ports then bus ports recorded by a formed cluster; None for a fresh directory.

    A directory where only some nodes formed, or formed with another size, cannot be reused.
    """
    formed = [nodes_conf_peers(node_dir / NODES_CONF) for node_dir in node_dirs]
    if all(peers <= 1 for peers in formed):
        return None
    if any(peers != total for peers in formed):
        raise ServerStartError(
            f"{server_dir} holds a cluster of another size or a half-formed one "
            f"({total} nodes wanted, nodes.conf files know {formed}): delete it to start afresh"
        )
    recorded = [nodes_conf_ports(node_dir / NODES_CONF) for node_dir in node_dirs]
    if any(ports is None for ports in recorded):
        raise ServerStartError(f"{server_dir}: a nodes.conf lacks its own address; delete it")
    return [p[0] for p in recorded if p] + [p[1] for p in recorded if p]


def _port_block(preferred: int, count: int) -> list[int]:
    if preferred and all(port_is_free(port) for port in range(preferred, preferred + count)):
        base = preferred
    else:
        base = free_port_block(count)
    return list(range(base, base + count))


def _start_node(
    index: int,
    node_dir: Path,
    port: int,
    bus_port: int,
    binary: Path,
    version: str,
    node_timeout_ms: int,
) -> LocalServer:
    def plan(data_port: int) -> LaunchPlan:
        argv = [
            str(binary),
            "--port", str(data_port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--dir", str(node_dir),
            "--daemonize", "no",
            "--set-proc-title", "no",
            "--cluster-enabled", "yes",
            "--cluster-config-file", NODES_CONF,
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-port", str(bus_port),
            "--cluster-announce-ip", "127.0.0.1",
            # A local cluster has no stale-data worry: any replica may take over.
            "--cluster-replica-validity-factor", "0",
            # Sync a (re)joining replica at once, not after the default 5 s wait for others.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, version=version)

    refuse_other_binary(node_dir, binary)
    server = ensure_local_server(
        f"redis-node-{index + 1}",
        f"{binary.name} {version} cluster node {index + 1}",
        node_dir,
        port,
        answers=_answers,
        plan_for_port=plan,
    )
    if server.port != port:
        # ensure_local_server fell back to another port: the peers would not find this node.
        server.stop()
        raise ServerStartError(f"cluster node {index + 1}: port {port} is taken by another program")
    server.data_paths = [node_dir / name for name in (*DATA_FILES, NODES_CONF)]
    return server


def _answers(port: int) -> bool:
    try:
        with _client(port, timeout=0.5) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _client(port: int, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


def _form(servers: list[LocalServer], masters: int, replicas: int) -> None:
    clients = [_client(server.port) for server in servers]
    try:
        for index, client in enumerate(clients):
            # Leftovers of a formation that crashed half-way (slots, peers) would block it.
            client.execute_command("FLUSHALL")
            client.execute_command("CLUSTER", "RESET", "HARD")
            # Distinct epochs from the start, as redis-cli does, spare the collision rounds.
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        for index in range(masters):
            first, last = index * SLOTS // masters, (index + 1) * SLOTS // masters - 1
            clients[index].execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        total = len(servers)
        for server in servers[1:]:
            bus_port = _bus_port(server)
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port, bus_port)
        _wait_for(lambda: all(_knows_all(c, total) for c in clients), "every node meets the rest")
        master_ids = [clients[i].execute_command("CLUSTER", "MYID") for i in range(masters)]
        for offset in range(masters * replicas):
            replica, master_id = clients[masters + offset], master_ids[offset % masters]
            _wait_for(functools.partial(_replicate, replica, master_id), "replicas attach")
    finally:
        for client in clients:
            client.close()


def _bus_port(server: LocalServer) -> int:
    argv = server.record.argv
    return int(argv[argv.index("--cluster-port") + 1])


def _knows_all(client: redis.Redis, total: int) -> bool:
    nodes = str(client.execute_command("CLUSTER", "NODES")).splitlines()
    return len(nodes) == total and not any("handshake" in line for line in nodes)


def _replicate(client: redis.Redis, master_id: str) -> bool:
    try:
        client.execute_command("CLUSTER", "REPLICATE", master_id)
        return True
    except redis.ResponseError:  # the master's role has not reached this node yet
        return False


def _wait_for(check: Callable[[], bool], what: str, timeout_s: float = FORM_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise ServerStartError(f"local cluster: timed out after {timeout_s:.0f} s: {what}")
        time.sleep(0.05)


def _wait_healthy(servers: list[LocalServer], total: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        problem = _health_problem(servers, total)
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise ServerStartError(f"local cluster not healthy after {timeout_s:.0f} s: {problem}")
        time.sleep(0.05)


def _health_problem(servers: list[LocalServer], total: int) -> str | None:
    """Why the cluster is not healthy yet (None when it is), judged by the running nodes."""
    maps: dict[int, list[tuple[int, int, int]]] = {}
    for server in servers:
        if not server.is_running():
            continue
        try:
            with _client(server.port, timeout=1.0) as client:
                info = cluster_info(str(client.execute_command("CLUSTER", "INFO")))
                replication = client.info("replication")
                maps[server.port] = slot_ranges(client.execute_command("CLUSTER", "SLOTS"))
        except (redis.RedisError, OSError) as error:
            return f"node {server.port}: {type(error).__name__}: {error}"
        problem = cluster_problem(info, replication, total)
        if problem is not None:
            return f"node {server.port}: {problem}"
    if not maps:
        return "no node is running"
    if len({tuple(slot_map) for slot_map in maps.values()}) > 1:
        return f"the nodes disagree on the slot map: {maps}"
    return None


def _role(server: LocalServer) -> str:
    if not server.is_running():
        return "down"
    with contextlib.suppress(redis.RedisError, OSError), _client(server.port, 1.0) as client:
        role = client.execute_command("ROLE")[0]
        return "master" if role == "master" else "replica"
    return "down"
