"""Protocol-level checks: does a Redis, PostgreSQL or Kafka-protocol server answer at an address?

Each check speaks the real protocol (PING, a PostgreSQL login, a Kafka ApiVersions request), so
an unrelated program on the port does not pass for the server.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis

PROBE_TIMEOUT_S = 2.0
_API_VERSIONS_KEY = 18


def redis_answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def postgres_answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Log in to the server's `postgres` database (the application database may not exist yet)."""
    try:
        return asyncio.run(_fetch_one(with_database(url, "postgres"), "SELECT 1", timeout)) == 1
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def ensure_database(url: str, timeout: float = PROBE_TIMEOUT_S * 2) -> bool:
    """Create the database named by `url` when missing; True when this call created it."""
    return asyncio.run(_ensure_database(url, timeout))


async def _ensure_database(url: str, limit_s: float) -> bool:
    name = database_name(url)
    conn = await asyncpg.connect(with_database(url, "postgres"), timeout=limit_s)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:  # created concurrently by another launcher
            return False
        return True
    finally:
        await conn.close()


async def _fetch_one(url: str, query: str, limit_s: float) -> object:
    conn = await asyncpg.connect(url, timeout=limit_s)
    try:
        return await asyncio.wait_for(conn.fetchval(query), limit_s)
    finally:
        await conn.close()


def kafka_answers(bootstrap: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when any bootstrap address answers a Kafka ApiVersions (v0) request."""
    return any(_api_versions_ok(address, timeout) for address in bootstrap.split(",") if address)


def split_host_port(address: str, default_port: int = 9092) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host:
        return port or "127.0.0.1", default_port
    return host.strip("[]"), int(port)


def _api_versions_ok(address: str, timeout: float) -> bool:
    host, port = split_host_port(address)
    correlation_id = 7
    client_id = b"booking-rush-probe"
    header = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(header)) + header)
            size = struct.unpack(">i", _read_exact(sock, 4))[0]
            body = _read_exact(sock, min(size, 65536))
    except (OSError, struct.error):
        return False
    if len(body) < 6:
        return False
    got_id, error_code = struct.unpack(">ih", body[:6])
    return got_id == correlation_id and error_code == 0


def _read_exact(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)
