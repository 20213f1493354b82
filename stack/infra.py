"""Redis, PostgreSQL and a Kafka-protocol broker for `make run` and the test suite.

For each server: use the one configured by REDIS_URL / DATABASE_URL / KAFKA_BOOTSTRAP (or the
conventional local default when unset) if it answers its protocol; otherwise start a local one
under `<run_dir>/<name>/` on loopback. The handle stops only what it started (or adopted from a
crashed launcher), and once watched restarts them when they die.

REDIS_CLUSTER_NODES (no REDIS_URL) starts a local Redis Cluster instead of the single Redis;
REDIS_URL with REDIS_CLUSTER=1 is an external cluster (see `cluster_request`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common.redis_client import mode_mismatch
from stack.env_counts import env_count, env_flag
from stack.probes import (
    database_name,
    ensure_database,
    kafka_answers,
    postgres_answers,
    redis_answers,
    with_database,
)
from stack.servers.base import LocalServer, ServerStartError
from stack.servers.kafka import start_local_kafka
from stack.servers.postgres import start_local_postgres
from stack.servers.redis import start_local_redis
from stack.servers.redis_cluster import LocalCluster, start_local_cluster
from stack.watch import ServerWatch

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
PREFERRED_PORTS: Mapping[str, int] = {
    "redis": 16379,
    "postgres": 15432,
    "kafka": 19092,
    "redis-cluster": 17000,  # and the ports after it: one per node, then one bus port per node
}
SERVER_NAMES = ("redis", "postgres", "kafka")
CLUSTER_DIR = "redis-cluster"


@dataclass(frozen=True)
class Endpoints:
    redis_url: str
    database_url: str
    kafka_bootstrap: str
    # The Redis at redis_url is a cluster's seed node (the services need a cluster client).
    redis_cluster: bool = False


class InfraHandle:
    """The servers found or started by `start_infra`; stops (and, once `watch()` is called,
    restarts) only the ones it started."""

    def __init__(
        self,
        endpoints: Endpoints,
        servers: list[LocalServer],
        cluster: LocalCluster | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.cluster = cluster  # the local Redis Cluster, when one was started (its nodes are
        # among `servers`, named redis-node-1, redis-node-2, ...)
        self._servers = servers
        self._lock = threading.Lock()
        self.started: list[str] = [server.kind for server in servers]
        self._watches = {
            server.kind: ServerWatch(server, endpoints.database_url) for server in servers
        }
        self._watch_stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def watch(self, log: Callable[[str], None] = print, *, interval_s: float = 0.1) -> None:
        """Restart every started server that dies (same port, same directory), with backoff."""
        with self._lock:
            if self._threads or not self._servers:
                return
            for watch in self._watches.values():
                thread = threading.Thread(
                    target=watch.run,
                    args=(self._watch_stop, log, interval_s),
                    name=f"watch-{watch.server.kind}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def server(self, kind: str) -> LocalServer | None:
        watch = self._watches.get(kind)
        return watch.server if watch is not None else None

    def server_pid(self, kind: str) -> int | None:
        """The pid of the `kind` server this handle started, while it runs; else None."""
        watch = self._watches.get(kind)
        if watch is None:
            return None
        server = watch.server
        return server.pid if server.is_running() else None

    def server_restarts(self, kind: str) -> int:
        watch = self._watches.get(kind)
        return watch.restarts if watch is not None else 0

    def kill_server(self, kind: str, *, wipe: bool = False) -> None:
        """SIGKILL the `kind` server this handle started; with `wipe`, delete its persisted data
        once it is dead, before the watch restarts it."""
        watch = self._watches.get(kind)
        if watch is None:
            raise KeyError(f"{kind}: no server of this kind was started here")
        with watch.lock:
            watch.server.kill()
            if wipe:
                watch.server.wipe()
            watch.killed_on_purpose = True

    def stop(self) -> None:
        """Stop the servers this handle started, in parallel; later calls do nothing."""
        self._watch_stop.set()
        with self._lock:
            servers, self._servers = self._servers, []
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=30.0)
        _stop_all(servers)


@dataclass(frozen=True)
class _Resolved:
    url: str
    servers: tuple[LocalServer, ...]
    message: str
    cluster: LocalCluster | None = None


def start_infra(
    run_dir: Path,
    env: Mapping[str, str],
    *,
    database_name: str = "booking_rush",
    log: Callable[[str], None] = print,
    ports: Mapping[str, int] | None = None,
    own_servers: bool = False,
) -> InfraHandle:
    """Find or start all three servers (in parallel) and return their endpoints.

    `ports` overrides the preferred local ports (redis 16379, postgres 15432, kafka 19092);
    a preferred port held by something else is replaced by a free one. `own_servers` starts
    local servers (on free ports unless `ports` names them) even when configured or default
    ones answer, so that the caller may kill them (chaos runs).
    """
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = cluster_request(env)
    defaults = {name: 0 for name in PREFERRED_PORTS} if own_servers else PREFERRED_PORTS
    wanted = {**defaults, **(ports or {})}
    own = own_servers
    resolve_redis: Callable[[], _Resolved]
    if cluster is not None and cluster.local:
        cluster_dir = run_dir / CLUSTER_DIR
        resolve_redis = lambda: _start_cluster(cluster, cluster_dir, wanted["redis-cluster"], env)  # noqa: E731
    elif cluster is not None:
        resolve_redis = lambda: _external_cluster(env)  # noqa: E731
    else:
        resolve_redis = lambda: _resolve_redis(env, run_dir / "redis", wanted["redis"], own)  # noqa: E731
    resolvers: dict[str, Callable[[], _Resolved]] = {
        "redis": resolve_redis,
        "postgres": lambda: _resolve_postgres(
            env, run_dir / "postgres", wanted["postgres"], database_name, own
        ),
        "kafka": lambda: _resolve_kafka(env, run_dir / "kafka", wanted["kafka"], own),
    }
    with ThreadPoolExecutor(max_workers=len(resolvers)) as pool:
        futures = {name: pool.submit(resolve) for name, resolve in resolvers.items()}
        outcomes = {name: _outcome(future) for name, future in futures.items()}
    servers = [s for o in outcomes.values() if isinstance(o, _Resolved) for s in o.servers]
    failures = {name: o for name, o in outcomes.items() if isinstance(o, BaseException)}
    if failures:
        _stop_all(servers)
        name, error = next(iter(failures.items()))
        raise RuntimeError(f"could not provide {name}: {error}") from error
    resolved = {name: o for name, o in outcomes.items() if isinstance(o, _Resolved)}
    for name in SERVER_NAMES:
        log(resolved[name].message)
    if env.get("REDIS_CLUSTER_NODES") and cluster is None:
        log("redis: REDIS_CLUSTER_NODES ignored: REDIS_URL is given (a cluster? REDIS_CLUSTER=1)")
    endpoints = Endpoints(
        redis_url=resolved["redis"].url,
        database_url=resolved["postgres"].url,
        kafka_bootstrap=resolved["kafka"].url,
        redis_cluster=cluster is not None,
    )
    return InfraHandle(endpoints, servers, resolved["redis"].cluster)


def _outcome(future: object) -> _Resolved | BaseException:
    try:
        return future.result()  # type: ignore[attr-defined,no-any-return]
    except Exception as error:
        return error


def _stop_all(servers: list[LocalServer]) -> None:
    threads = [threading.Thread(target=server.stop) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _configured(env: Mapping[str, str], variable: str, default: str) -> tuple[str, str]:
    """(value, description) of the configured address, falling back to the default."""
    value = env.get(variable, "").strip()
    if value:
        return value, f"configured {variable}"
    return default, "default"


def _started_message(kind: str, server: LocalServer, url: str, why: str) -> str:
    verb = "reusing" if server.reused else "started"
    return (
        f"{kind}: {verb} local {server.name} on 127.0.0.1:{server.port} "
        f"(pid {server.record.pid}) at {redact(url)}; {why}"
    )


_OWN = "own servers requested"


def _resolve_redis(env: Mapping[str, str], server_dir: Path, port: int, own: bool) -> _Resolved:
    url, source = _configured(env, "REDIS_URL", DEFAULT_REDIS_URL)
    if not own and redis_answers(url):
        _refuse_wrong_mode(url, cluster=False)
        return _Resolved(url, (), f"redis: using {source} redis at {redact(url)}")
    server = start_local_redis(server_dir, port, env)
    local_url = f"redis://127.0.0.1:{server.port}/0"
    why = _OWN if own else f"nothing answered at {redact(url)} ({source})"
    return _Resolved(local_url, (server,), _started_message("redis", server, local_url, why))


def _resolve_postgres(
    env: Mapping[str, str], server_dir: Path, port: int, default_name: str, own: bool
) -> _Resolved:
    url, source = _configured(env, "DATABASE_URL", DEFAULT_POSTGRES_URL)
    name = database_name(url) or default_name
    if not own and postgres_answers(url):
        full_url = with_database(url, name)
        created = " (created the database)" if ensure_database(full_url) else ""
        message = f"postgres: using {source} postgres at {redact(full_url)}{created}"
        return _Resolved(full_url, (), message)
    server = start_local_postgres(server_dir, port, env)
    local_url = f"postgresql://postgres@127.0.0.1:{server.port}/{name}"
    ensure_database(local_url)
    why = _OWN if own else f"nothing answered at {redact(url)} ({source})"
    return _Resolved(local_url, (server,), _started_message("postgres", server, local_url, why))


def _resolve_kafka(env: Mapping[str, str], server_dir: Path, port: int, own: bool) -> _Resolved:
    bootstrap, source = _configured(env, "KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    if not own and kafka_answers(bootstrap):
        return _Resolved(bootstrap, (), f"kafka: using {source} broker at {bootstrap}")
    server = start_local_kafka(server_dir, port)
    local = f"127.0.0.1:{server.port}"
    why = _OWN if own else f"nothing answered at {bootstrap} ({source})"
    return _Resolved(local, (server,), _started_message("kafka", server, local, why))


@dataclass(frozen=True)
class ClusterRequest:
    """A Redis Cluster asked for by the environment: a local one of `masters` x (1 + replicas)
    nodes, or (`local` False) the external one at REDIS_URL."""

    local: bool
    masters: int = 0
    replicas: int = 0


def cluster_request(env: Mapping[str, str]) -> ClusterRequest | None:
    """REDIS_CLUSTER_NODES (>= 3 masters) / REDIS_CLUSTER_REPLICAS (>= 0 per master) start a
    local cluster unless REDIS_URL is given; REDIS_URL with REDIS_CLUSTER=1 is an external
    cluster used as it is. None: a single Redis. ValueError names a bad variable."""
    flag = env_flag(env, "REDIS_CLUSTER")
    masters = env_count(env, "REDIS_CLUSTER_NODES", 0, minimum=3)
    replicas = env_count(env, "REDIS_CLUSTER_REPLICAS", 0, minimum=0)
    if (env.get("REDIS_URL") or "").strip():
        return ClusterRequest(local=False) if flag else None
    if masters or flag:
        return ClusterRequest(local=True, masters=masters or 3, replicas=replicas)
    return None


def _start_cluster(
    request: ClusterRequest, cluster_dir: Path, port: int, env: Mapping[str, str]
) -> _Resolved:
    cluster = start_local_cluster(
        cluster_dir,
        masters=request.masters,
        replicas=request.replicas,
        preferred_port=port,
        env=env,
    )
    verb = "reusing" if cluster.reused else "started"
    ports = ",".join(str(port) for port in cluster.ports)
    message = (
        f"redis: {verb} local cluster of {request.masters} masters x {request.replicas} "
        f"replicas on 127.0.0.1:{ports} ({cluster.servers[0].name.split(' cluster')[0]}); "
        f"seed {cluster.url}; REDIS_CLUSTER_NODES={request.masters}"
    )
    return _Resolved(cluster.url, tuple(cluster.servers), message, cluster)


def _external_cluster(env: Mapping[str, str]) -> _Resolved:
    url = env["REDIS_URL"].strip()
    answers = redis_answers(url)
    if answers:
        _refuse_wrong_mode(url, cluster=True)
    state = "answers" if answers else "does not answer yet"
    return _Resolved(url, (), f"redis: using configured cluster REDIS_URL={redact(url)} ({state})")


def _refuse_wrong_mode(url: str, *, cluster: bool) -> None:
    """REDIS_CLUSTER against what REDIS_URL really is, before any service starts."""
    problem = mode_mismatch(url, cluster=cluster)
    if problem is not None:
        raise ServerStartError(problem)


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
