"""The request deadline of the gateway's upstream client (gateway/upstream.py): one timer per
exchange, and the wait for a free connection bounded by the same deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.upstream import UpstreamTimeoutError, encode_request
from tests.gateway.test_upstream_client import ok, scripted


def silent(head: bytes) -> bytes:
    return b""  # never answers (the connection stays open)


async def test_an_answer_late_past_the_deadline_fails_and_is_not_pooled() -> None:
    async with scripted(silent) as (_upstream, pool):
        exchange = await pool.acquire()
        exchange.expire_at(asyncio.get_running_loop().time() + 0.2)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeoutError):
            await exchange.send(
                encode_request("GET", b"/x", pool.authority, [], None), head_request=False
            )
        assert 0.15 < time.monotonic() - started < 1.0
        pool.release(exchange)
        assert exchange.closed and pool._idle == []


async def test_a_complete_answer_disarms_the_deadline() -> None:
    async with scripted(lambda head: ok()) as (_upstream, pool):
        exchange = await pool.acquire()
        exchange.expire_at(asyncio.get_running_loop().time() + 0.1)
        await exchange.send(
            encode_request("GET", b"/x", pool.authority, [], None), head_request=False
        )
        assert await exchange.read_all(1 << 20) == b'{"ok":true}'
        pool.release(exchange)
        await asyncio.sleep(0.2)  # past the deadline: the pooled connection is untouched
        (idle,) = pool._idle
        assert idle is exchange and not exchange.closed


async def test_waiting_for_a_free_connection_counts_against_the_deadline() -> None:
    async with scripted(lambda head: ok(), limit=1) as (_upstream, pool):
        held = await pool.acquire()
        deadline = asyncio.get_running_loop().time() + 0.2
        with pytest.raises(UpstreamTimeoutError):
            await pool.acquire(deadline=deadline)
        pool.release(held)
        again = await pool.acquire(deadline=asyncio.get_running_loop().time() + 1)  # slot back
        pool.release(again)
