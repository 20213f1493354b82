"""The servers the stack started are restarted when they die: same port, same data."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from stack.infra import InfraHandle, start_infra
from stack.probes import kafka_answers, postgres_answers, redis_answers
from stack.processes import free_port, is_alive, port_is_free, wait_until
from stack.specs import ProcessSpec
from stack.supervisor import Stack
from tests.stack.test_infra import redis_only_env

# It starts processes of its own.
pytestmark = pytest.mark.e2e

STANDIN = str(Path(__file__).with_name("standin.py"))


def aof_holds(server_dir: Path, text: bytes) -> bool:
    """The append-only file (written before Redis answers, fsynced every second) has `text`."""
    files = [*server_dir.glob("appendonlydir/*.incr.aof"), server_dir / "appendonly.aof"]
    return any(path.is_file() and text in path.read_bytes() for path in files)


@pytest.fixture
def watched_redis(
    local_infra: InfraHandle, run_dir: Path
) -> Iterator[tuple[InfraHandle, list[str]]]:
    """A local Redis (PostgreSQL and Kafka are the module's), restarted by the handle's watch."""
    lines: list[str] = []
    handle = start_infra(
        run_dir, redis_only_env(local_infra), ports={"redis": free_port()}, log=lines.append
    )
    handle.watch(log=lines.append, interval_s=0.05)
    try:
        yield handle, lines
    finally:
        handle.stop()


def test_crashed_redis_is_restarted_on_its_port_with_its_data(
    watched_redis: tuple[InfraHandle, list[str]], run_dir: Path
) -> None:
    handle, lines = watched_redis
    url = handle.endpoints.redis_url
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.set("place:kept", "42")
        assert wait_until(lambda: aof_holds(run_dir / "redis", b"place:kept"), 5.0)
        pid = handle.server_pid("redis")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # a crash from outside, not through the hook

        assert wait_until(lambda: handle.server_restarts("redis") == 1, 20.0)
        assert handle.server_pid("redis") not in (None, pid)
        assert redis_answers(url)  # same URL: same port
        assert client.get("place:kept") == "42"
    finally:
        client.close()
    assert any("redis:" in line and "restarting on 127.0.0.1:" in line for line in lines)
    assert any("redis: restarted (pid" in line for line in lines)


def test_killed_redis_with_wipe_comes_back_empty(
    watched_redis: tuple[InfraHandle, list[str]], run_dir: Path
) -> None:
    handle, _lines = watched_redis
    client = redis.Redis.from_url(handle.endpoints.redis_url, decode_responses=True)
    try:
        client.set("pass:lost", "1")
        assert wait_until(lambda: aof_holds(run_dir / "redis", b"pass:lost"), 5.0)
        pid = handle.server_pid("redis")
        assert pid is not None
        handle.kill_server("redis", wipe=True)
        assert not is_alive(pid)
        assert wait_until(lambda: handle.server_restarts("redis") == 1, 20.0)
        assert client.dbsize() == 0
        assert client.get("pass:lost") is None
    finally:
        client.close()


def test_servers_started_by_the_handle_only(local_infra: InfraHandle) -> None:
    assert local_infra.server_pid("redis") is not None
    with pytest.raises(KeyError):
        InfraHandle(local_infra.endpoints, []).kill_server("redis")
    assert InfraHandle(local_infra.endpoints, []).server_pid("redis") is None


async def _create_and_count(url: str, create: bool) -> int:
    conn = await asyncpg.connect(url)
    try:
        if create:
            await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2)")
        return int(await conn.fetchval("SELECT count(*) FROM kept"))
    finally:
        await conn.close()


def test_own_servers_stack_restarts_each_killed_server(
    local_infra: InfraHandle, run_dir: Path
) -> None:
    """A stack with its own servers even though configured ones answer; each killed server comes
    back on its port (PostgreSQL with its data) while the processes keep running."""
    env = {
        "REDIS_URL": local_infra.endpoints.redis_url,
        "DATABASE_URL": local_infra.endpoints.database_url,
        "KAFKA_BOOTSTRAP": local_infra.endpoints.kafka_bootstrap,
    }
    spec = ProcessSpec("worker", [sys.executable, STANDIN, "worker", "0"], dict(os.environ))
    stack = Stack(
        run_dir, env, specs=[spec], run_setup=False, own_servers=True, console=io.StringIO()
    )
    stack.start()
    pids: dict[str, int] = {}
    try:
        endpoints = stack.endpoints
        assert endpoints is not None
        assert endpoints.redis_url != local_infra.endpoints.redis_url
        assert endpoints.database_url != local_infra.endpoints.database_url
        assert endpoints.kafka_bootstrap != local_infra.endpoints.kafka_bootstrap
        assert asyncio.run(_create_and_count(endpoints.database_url, create=True)) == 2
        worker_pid = stack.pids()["worker"]

        for kind in ("postgres", "kafka"):
            pid = stack.server_pid(kind)
            assert pid is not None
            pids[kind] = pid
            stack.kill_server(kind)
            assert not is_alive(pid)
            assert wait_until(lambda k=kind: stack.server_restarts(k) == 1, 30.0), kind  # type: ignore[misc]
            assert stack.server_pid(kind) not in (None, pid)

        assert postgres_answers(endpoints.database_url)
        assert asyncio.run(_create_and_count(endpoints.database_url, create=False)) == 2
        assert kafka_answers(endpoints.kafka_bootstrap)
        assert stack.server_restarts("redis") == 0
        assert stack.pids()["worker"] == worker_pid
        pids = {kind: stack.server_pid(kind) or 0 for kind in ("redis", "postgres", "kafka")}
    finally:
        stack.stop()
    assert stack.stop_report["worker"].exit_code == 0
    assert not any(is_alive(pid) for pid in pids.values())
    port = int(endpoints.kafka_bootstrap.rsplit(":", 1)[1])
    assert wait_until(lambda: port_is_free(port), 5.0)
