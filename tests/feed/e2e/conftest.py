"""The real processes (`make run`'s stack: gateway, booking, every registered worker) on their own
database, Redis db and Kafka namespace, with a 5 s hold so an expiry happens within a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from booking.db import create_pool
from tests.live import LiveStack, insert_user, live_stack_fixture

HOLD_TTL_S = 5


feed_stack = live_stack_fixture(
    "feed_e2e",
    fixture="feed_stack",
    env={"HOLD_TTL_S": str(HOLD_TTL_S)},
)


@pytest.fixture
async def gw(feed_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=feed_stack.gateway_url + "/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
async def db(feed_stack: LiveStack) -> AsyncIterator[Any]:
    pool = await create_pool(feed_stack.endpoints.database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def user(feed_stack: LiveStack, db: Any) -> Any:
    """A user row (no slow hash) and its auth headers."""

    async def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        return await insert_user(db, feed_stack, role)

    return make
