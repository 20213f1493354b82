"""Redis, PostgreSQL and a Kafka-protocol broker for `make run` and the test suite.

For each server: use the one configured by REDIS_URL / DATABASE_URL / KAFKA_BOOTSTRAP (or the
conventional local default when unset) if it answers its protocol; otherwise start a local one
under `<run_dir>/<name>/` on loopback. The handle stops only what it started (or adopted from a
crashed launcher).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from stack.probes import (
    database_name,
    ensure_database,
    kafka_answers,
    postgres_answers,
    redis_answers,
    with_database,
)
from stack.servers.base import LocalServer
from stack.servers.kafka import start_local_kafka
from stack.servers.postgres import start_local_postgres
from stack.servers.redis import start_local_redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
PREFERRED_PORTS: Mapping[str, int] = {"redis": 16379, "postgres": 15432, "kafka": 19092}
SERVER_NAMES = ("redis", "postgres", "kafka")


@dataclass(frozen=True)
class Endpoints:
    redis_url: str
    database_url: str
    kafka_bootstrap: str


class InfraHandle:
    def __init__(self, endpoints: Endpoints, servers: list[LocalServer]) -> None:
        self.endpoints = endpoints
        self._servers = servers
        self._lock = threading.Lock()
        self.started: list[str] = [server.kind for server in servers]

    def stop(self) -> None:
        """Stop the servers this handle started, in parallel; later calls do nothing."""
        with self._lock:
            servers, self._servers = self._servers, []
        _stop_all(servers)


@dataclass(frozen=True)
class _Resolved:
    url: str
    server: LocalServer | None
    message: str


def start_infra(
    run_dir: Path,
    env: Mapping[str, str],
    *,
    database_name: str = "booking_rush",
    log: Callable[[str], None] = print,
    ports: Mapping[str, int] | None = None,
) -> InfraHandle:
    """Find or start all three servers (in parallel) and return their endpoints.

    `ports` overrides the preferred local ports (redis 16379, postgres 15432, kafka 19092);
    a preferred port held by something else is replaced by a free one.
    """
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    wanted = {**PREFERRED_PORTS, **(ports or {})}
    resolvers: dict[str, Callable[[], _Resolved]] = {
        "redis": lambda: _resolve_redis(env, run_dir / "redis", wanted["redis"]),
        "postgres": lambda: _resolve_postgres(
            env, run_dir / "postgres", wanted["postgres"], database_name
        ),
        "kafka": lambda: _resolve_kafka(env, run_dir / "kafka", wanted["kafka"]),
    }
    with ThreadPoolExecutor(max_workers=len(resolvers)) as pool:
        futures = {name: pool.submit(resolve) for name, resolve in resolvers.items()}
        outcomes = {name: _outcome(future) for name, future in futures.items()}
    servers = [o.server for o in outcomes.values() if isinstance(o, _Resolved) and o.server]
    failures = {name: o for name, o in outcomes.items() if isinstance(o, BaseException)}
    if failures:
        _stop_all(servers)
        name, error = next(iter(failures.items()))
        raise RuntimeError(f"could not provide {name}: {error}") from error
    resolved = {name: o for name, o in outcomes.items() if isinstance(o, _Resolved)}
    for name in SERVER_NAMES:
        log(resolved[name].message)
    endpoints = Endpoints(
        redis_url=resolved["redis"].url,
        database_url=resolved["postgres"].url,
        kafka_bootstrap=resolved["kafka"].url,
    )
    return InfraHandle(endpoints, servers)


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


def _resolve_redis(env: Mapping[str, str], server_dir: Path, port: int) -> _Resolved:
    url, source = _configured(env, "REDIS_URL", DEFAULT_REDIS_URL)
    if redis_answers(url):
        return _Resolved(url, None, f"redis: using {source} redis at {redact(url)}")
    server = start_local_redis(server_dir, port, env)
    local_url = f"redis://127.0.0.1:{server.port}/0"
    why = f"nothing answered at {redact(url)} ({source})"
    return _Resolved(local_url, server, _started_message("redis", server, local_url, why))


def _resolve_postgres(
    env: Mapping[str, str], server_dir: Path, port: int, default_name: str
) -> _Resolved:
    url, source = _configured(env, "DATABASE_URL", DEFAULT_POSTGRES_URL)
    name = database_name(url) or default_name
    if postgres_answers(url):
        full_url = with_database(url, name)
        created = " (created the database)" if ensure_database(full_url) else ""
        message = f"postgres: using {source} postgres at {redact(full_url)}{created}"
        return _Resolved(full_url, None, message)
    server = start_local_postgres(server_dir, port, env)
    local_url = f"postgresql://postgres@127.0.0.1:{server.port}/{name}"
    ensure_database(local_url)
    why = f"nothing answered at {redact(url)} ({source})"
    return _Resolved(local_url, server, _started_message("postgres", server, local_url, why))


def _resolve_kafka(env: Mapping[str, str], server_dir: Path, port: int) -> _Resolved:
    bootstrap, source = _configured(env, "KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    if kafka_answers(bootstrap):
        return _Resolved(bootstrap, None, f"kafka: using {source} broker at {bootstrap}")
    server = start_local_kafka(server_dir, port)
    local = f"127.0.0.1:{server.port}"
    why = f"nothing answered at {bootstrap} ({source})"
    return _Resolved(local, server, _started_message("kafka", server, local, why))


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
