"""common/script_wire.py on real Redis: the lean single-node path every script takes (rate
limits, inventory, queue, waitlist), and `script_runner` choosing it."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.script_batch import ScriptBatcher, script_runner
from common.script_wire import DEFAULT_TIMEOUT_S, WireScript, encode_command, node_address

ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}"
BOOM = "if ARGV[1] == 'boom' then return redis.error_reply('BOOM') end return 1"


def wire_for(redis_url: str, source: str, *, timeout_s: float = 1.0, db: int | None = None) -> Any:
    address = node_address(aioredis.Redis.from_url(redis_url))
    assert address is not None
    if db is not None:
        address["db"] = db
    return WireScript(source, **{**address, "timeout_s": timeout_s})


@pytest.fixture
async def fresh_source(unique: str) -> AsyncIterator[str]:
    # A script Redis has never seen: its first EVALSHA is answered NOSCRIPT.
    yield f"{ECHO} -- {unique}"


def test_commands_are_encoded_as_redis_py_would() -> None:
    assert encode_command("EVALSHA", "ab", 1, "k", 2.5) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$3\r\n2.5\r\n"
    )


async def test_calls_of_one_turn_share_a_connection_and_get_their_own_answers(
    redis_url: str, fresh_source: str
) -> None:
    wire = wire_for(redis_url, fresh_source)
    try:
        answers = await asyncio.gather(*(wire.run([f"k{n}"], [f"v{n}", n]) for n in range(50)))
        assert answers == [[f"k{n}".encode(), f"v{n}".encode(), n + 1] for n in range(50)]
        assert len(wire._idle) == 1  # one batch, one connection
        again = await asyncio.gather(*(wire.run(["x"], ["y", n]) for n in range(3)))
        assert again == [[b"x", b"y", n + 1] for n in range(3)]
        assert len(wire._idle) == 1  # reused
    finally:
        await wire.aclose()


async def test_a_script_redis_lost_is_sent_whole_and_loaded(
    redis_url: str, redis: aioredis.Redis, fresh_source: str
) -> None:
    sha = hashlib.sha1(fresh_source.encode()).hexdigest()
    assert await redis.script_exists(sha) == [False]
    wire = wire_for(redis_url, fresh_source)
    try:
        assert await wire.run(["k"], ["v", 1]) == [b"k", b"v", 2]
        assert await redis.script_exists(sha) == [True]
    finally:
        await wire.aclose()


async def test_an_error_answer_fails_only_its_own_call(redis_url: str) -> None:
    wire = wire_for(redis_url, BOOM)
    try:
        answers = await asyncio.gather(
            wire.run(["k"], ["fine"]),
            wire.run(["k"], ["boom"]),
            wire.run(["k"], ["fine"]),
            return_exceptions=True,
        )
        assert answers[0] == 1 and answers[2] == 1
        assert isinstance(answers[1], ResponseError) and "BOOM" in str(answers[1])
        assert await wire.run(["k"], ["fine"]) == 1  # the connection still serves
    finally:
        await wire.aclose()


async def test_the_configured_db_is_selected(redis_url: str, unique: str) -> None:
    base = aioredis.Redis.from_url(redis_url)
    own_db = int(base.connection_pool.connection_kwargs.get("db", 0) or 0)
    other_db = 13 if own_db != 13 else 12
    key = f"test:wire:{unique}"
    wire = wire_for(redis_url, "return redis.call('SET', KEYS[1], 'x', 'EX', 60)", db=other_db)
    address = node_address(base)
    assert address is not None
    other = aioredis.Redis(host=address["host"], port=address["port"], db=other_db)
    try:
        assert await wire.run([key], []) == b"OK"
        assert await other.exists(key) == 1
        assert await base.exists(key) == 0
    finally:
        await other.delete(key)
        await wire.aclose()
        await other.aclose()
        await base.aclose()


async def test_nothing_listening_is_a_connection_error(fresh_source: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wire = WireScript(fresh_source, host="127.0.0.1", port=port, timeout_s=1.0)
    with pytest.raises(RedisConnectionError):
        await wire.run(["k"], ["v", 1])


async def test_a_silent_server_times_out_and_its_connection_is_dropped(fresh_source: str) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    wire = WireScript(fresh_source, host="127.0.0.1", port=port, timeout_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await wire.run(["k"], ["v", 1])
        assert 0.15 < time.monotonic() - started < 1.0
        assert wire._idle == []
    finally:
        await wire.aclose()
        server.close()
        await server.wait_closed()


async def test_a_connection_closed_while_idle_is_not_reused(
    redis_url: str, fresh_source: str
) -> None:
    wire = wire_for(redis_url, fresh_source)
    try:
        assert await wire.run(["k"], ["v", 1]) == [b"k", b"v", 2]
        (idle,) = wire._idle
        idle.transport.close()
        await asyncio.sleep(0.05)
        assert await wire.run(["k"], ["v", 2]) == [b"k", b"v", 3]
        assert wire._idle and wire._idle[0] is not idle
    finally:
        await wire.aclose()


def test_tls_and_unix_socket_clients_keep_redis_py() -> None:
    assert node_address(aioredis.Redis.from_url("rediss://127.0.0.1:6380/0")) is None
    assert node_address(aioredis.Redis.from_url("unix:///tmp/redis.sock")) is None
    address = node_address(aioredis.Redis.from_url("redis://u:p@127.0.0.1:6390/4"))
    assert address == {
        "host": "127.0.0.1",
        "port": 6390,
        "db": 4,
        "username": "u",
        "password": "p",
        "timeout_s": DEFAULT_TIMEOUT_S,
        "connect_timeout_s": DEFAULT_TIMEOUT_S,
    }
    timed = aioredis.Redis.from_url(
        "redis://127.0.0.1:6390", socket_timeout=0.25, socket_connect_timeout=2
    )
    assert node_address(timed) == {
        "host": "127.0.0.1",
        "port": 6390,
        "db": 0,
        "username": None,
        "password": None,
        "timeout_s": 0.25,
        "connect_timeout_s": 2.0,
    }


def test_script_runner_takes_the_wire_on_a_plain_node_only() -> None:
    assert isinstance(
        script_runner(aioredis.Redis.from_url("redis://127.0.0.1:6390"), ECHO), WireScript
    )
    tls = aioredis.Redis.from_url("rediss://127.0.0.1:6380/0")
    assert isinstance(script_runner(tls, ECHO), ScriptBatcher)


async def test_load_puts_the_script_in_redis_and_refuses_a_broken_one(
    redis_url: str, redis: aioredis.Redis, fresh_source: str
) -> None:
    sha = hashlib.sha1(fresh_source.encode()).hexdigest()
    wire = wire_for(redis_url, fresh_source)
    broken = wire_for(redis_url, "return {")
    try:
        assert await redis.script_exists(sha) == [False]
        await wire.load()
        assert await redis.script_exists(sha) == [True]
        assert len(wire._idle) == 1  # the connection it loaded with serves the calls
        assert await wire.run(["k"], ["v", 1]) == [b"k", b"v", 2]
        with pytest.raises(ResponseError):
            await broken.load()
        assert broken._idle == []
    finally:
        await wire.aclose()
        await broken.aclose()


def test_cached_encoding_is_the_plain_encoding() -> None:
    wire = WireScript("return 1", host="127.0.0.1", port=1, timeout_s=1.0)
    for _ in range(2):  # the second time from the caches
        assert wire._encode("EVALSHA", "ab", ["k1", "k2"], ["", 1, 2.5, 10]) == encode_command(
            "EVALSHA", "ab", 2, "k1", "k2", "", 1, 2.5, 10
        )


async def test_a_call_that_cannot_be_encoded_fails_alone(redis_url: str, fresh_source: str) -> None:
    """Its error reaches its caller; the other calls of its turn get their answers (an error
    escaping the loop callback would leave every caller of the batch waiting forever)."""
    wire = wire_for(redis_url, fresh_source)
    try:
        calls = asyncio.gather(
            wire.run(["k"], ["v", 1]), wire.run(["k"], ["\udad2", 1]), return_exceptions=True
        )
        answers: Any = await asyncio.wait_for(calls, 2)
        good, bad = answers
        assert good == [b"k", b"v", 2]
        assert isinstance(bad, UnicodeEncodeError)
        assert await asyncio.wait_for(wire.run(["k"], ["w", 2]), 2) == [b"k", b"w", 3]
    finally:
        await wire.aclose()
