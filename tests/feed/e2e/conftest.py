"""The real processes (`make run`'s stack: gateway, booking, every registered worker) on their own
database, Redis db and Kafka namespace, with a 5 s hold so an expiry happens within a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.live import LiveStack, insert_user, live_stack_fixture

HOLD_TTL_S = 5


feed_stack = live_stack_fixture(
    "feed_e2e",
    fixture="feed_stack",
    env={"HOLD_TTL_S": str(HOLD_TTL_S)},
)


@pytest.fixture
async def gw(feed_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with feed_stack.client() as client:
        yield client


@pytest.fixture
async def db(feed_stack: LiveStack) -> AsyncIterator[Any]:
    async with feed_stack.database() as pool:
        yield pool


@pytest.fixture
def user(feed_stack: LiveStack, db: Any) -> Any:
    """A user row (no slow hash) and its auth headers."""

    async def make(role: str = "customer") -> tuple[str, dict[str, str]]:
        return await insert_user(db, feed_stack, role)

    return make
