"""The launcher against real servers: reuse what answers, start what does not, leave no orphans."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stack.infra import InfraHandle, start_infra
from stack.probes import kafka_answers, postgres_answers, redis_answers
from stack.processes import free_port, is_alive, port_is_free
from stack.servers.base import ServerRecord
from tests.stack.conftest import dead_env, free_ports

CRASHING_LAUNCHER = """
import json, os, sys
from stack.infra import start_infra
start_infra(sys.argv[1], json.loads(sys.argv[2]), ports=json.loads(sys.argv[3]), log=print)
os._exit(0)  # a crash: no stop(), the servers stay behind
"""


def redis_only_env(local_infra: InfraHandle) -> dict[str, str]:
    """PostgreSQL and Kafka answer (the module's servers); Redis must be started locally."""
    return {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DATABASE_URL": local_infra.endpoints.database_url,
        "KAFKA_BOOTSTRAP": local_infra.endpoints.kafka_bootstrap,
    }


def crash_launcher(run_dir: Path, env: dict[str, str], ports: dict[str, int]) -> ServerRecord:
    subprocess.run(
        [sys.executable, "-c", CRASHING_LAUNCHER, str(run_dir), json.dumps(env), json.dumps(ports)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    record = ServerRecord.read(run_dir / "redis")
    assert record is not None and record.is_running_ours()
    return record


def test_dead_addresses_start_local_servers_on_loopback(local_infra: InfraHandle) -> None:
    endpoints = local_infra.endpoints
    assert local_infra.started == ["redis", "postgres", "kafka"]
    assert endpoints.redis_url.startswith("redis://127.0.0.1:")
    assert endpoints.database_url.startswith("postgresql://postgres@127.0.0.1:")
    assert endpoints.database_url.endswith("/stack_test")
    assert endpoints.kafka_bootstrap.startswith("127.0.0.1:")
    assert redis_answers(endpoints.redis_url)
    assert postgres_answers(endpoints.database_url)
    assert kafka_answers(endpoints.kafka_bootstrap)


async def test_database_named_by_the_url_exists(local_infra: InfraHandle) -> None:
    conn = await asyncpg.connect(local_infra.endpoints.database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "stack_test"
    finally:
        await conn.close()


async def test_kafka_produce_and_consume_on_local_broker(
    local_infra: InfraHandle, unique: str
) -> None:
    bootstrap = local_infra.endpoints.kafka_bootstrap
    topic = f"stack-{unique}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"stack-{unique}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"k", b"hello")


def test_stop_frees_ports_and_removes_records(run_dir: Path) -> None:
    handle = start_infra(run_dir, dead_env(), ports=free_ports(), log=lambda _line: None)
    records = {name: ServerRecord.read(run_dir / name) for name in handle.started}
    assert all(record is not None for record in records.values())

    started = time.monotonic()
    handle.stop()
    assert time.monotonic() - started < 5
    handle.stop()  # idempotent

    for name, record in records.items():
        assert record is not None
        assert not is_alive(record.pid), name
        assert port_is_free(record.port), name
        assert not (run_dir / name / "server.json").exists()


def test_answering_configured_servers_are_used_and_left_running(
    local_infra: InfraHandle, run_dir: Path, unique: str
) -> None:
    given = local_infra.endpoints
    base_db_url = given.database_url.rsplit("/", 1)[0]
    env = {
        "REDIS_URL": given.redis_url,
        "DATABASE_URL": f"{base_db_url}/stack_{unique}",
        "KAFKA_BOOTSTRAP": given.kafka_bootstrap,
    }
    lines: list[str] = []
    handle = start_infra(run_dir, env, log=lines.append)
    assert handle.started == []
    assert handle.endpoints.redis_url == given.redis_url
    assert handle.endpoints.database_url == f"{base_db_url}/stack_{unique}"
    assert postgres_answers(handle.endpoints.database_url)
    assert any("using configured REDIS_URL" in line for line in lines)
    handle.stop()
    assert redis_answers(given.redis_url)
    assert kafka_answers(given.kafka_bootstrap)


def test_database_name_argument_when_url_names_none(
    local_infra: InfraHandle, run_dir: Path, unique: str
) -> None:
    env = {**redis_only_env(local_infra), "REDIS_URL": local_infra.endpoints.redis_url}
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0]
    handle = start_infra(run_dir, env, database_name=f"named_{unique}", log=lambda _line: None)
    assert handle.endpoints.database_url.endswith(f"/named_{unique}")
    assert handle.started == []


def test_server_left_by_crashed_launcher_is_reused_then_stopped(
    local_infra: InfraHandle, run_dir: Path
) -> None:
    env, ports = redis_only_env(local_infra), {"redis": free_port()}
    orphan = crash_launcher(run_dir, env, ports)

    lines: list[str] = []
    handle = start_infra(run_dir, env, ports=ports, log=lines.append)
    assert handle.started == ["redis"]
    assert handle.endpoints.redis_url == f"redis://127.0.0.1:{orphan.port}/0"
    assert any("reusing" in line and f"pid {orphan.pid}" in line for line in lines)

    handle.stop()
    assert not is_alive(orphan.pid)
    assert port_is_free(orphan.port)


def test_own_server_that_does_not_answer_is_replaced(
    local_infra: InfraHandle, run_dir: Path
) -> None:
    env, ports = redis_only_env(local_infra), {"redis": free_port()}
    orphan = crash_launcher(run_dir, env, ports)
    os.kill(orphan.pid, signal.SIGSTOP)  # alive and ours, but answers nothing
    try:
        handle = start_infra(run_dir, env, ports=ports, log=lambda _line: None)
    finally:
        if is_alive(orphan.pid):
            os.kill(orphan.pid, signal.SIGKILL)
    try:
        fresh = ServerRecord.read(run_dir / "redis")
        assert fresh is not None and fresh.pid != orphan.pid
        assert not is_alive(orphan.pid)
        assert redis_answers(handle.endpoints.redis_url)
    finally:
        handle.stop()


def test_stale_records_are_dropped_and_foreign_pids_spared(
    local_infra: InfraHandle, run_dir: Path
) -> None:
    env = redis_only_env(local_infra)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    for pid in (int(finished.stdout), os.getpid()):  # a dead pid, then a live one not ours
        (run_dir / "redis").mkdir(exist_ok=True)
        ServerRecord(pid, free_port(), ["redis-server", "--port", "1"], time.time()).write(
            run_dir / "redis"
        )
        handle = start_infra(run_dir, env, ports={"redis": free_port()}, log=lambda _line: None)
        try:
            record = ServerRecord.read(run_dir / "redis")
            assert record is not None and record.pid != pid
            assert handle.started == ["redis"]
        finally:
            handle.stop()
    assert is_alive(os.getpid())


def test_preferred_port_held_by_another_program_is_avoided(
    local_infra: InfraHandle, run_dir: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        held = squatter.getsockname()[1]
        handle = start_infra(
            run_dir, redis_only_env(local_infra), ports={"redis": held}, log=lambda _line: None
        )
        try:
            assert handle.endpoints.redis_url != f"redis://127.0.0.1:{held}/0"
            assert redis_answers(handle.endpoints.redis_url)
        finally:
            handle.stop()


def test_server_shared_by_two_launchers_is_stopped_by_the_last(
    local_infra: InfraHandle, run_dir: Path
) -> None:
    env, ports = redis_only_env(local_infra), {"redis": free_port()}
    first = start_infra(run_dir, env, ports=ports, log=lambda _line: None)
    second = start_infra(run_dir, env, ports=ports, log=lambda _line: None)
    record = ServerRecord.read(run_dir / "redis")
    assert record is not None
    assert first.endpoints.redis_url == second.endpoints.redis_url

    first.stop()  # a parallel session still uses it
    assert redis_answers(second.endpoints.redis_url)

    second.stop()
    assert not is_alive(record.pid)
    assert port_is_free(record.port)
