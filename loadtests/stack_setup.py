"""The stack set-up `make bench` (bench.py), `make streams` (streams.py) and `make capacity`
(costs.py) share: the environment of the processes they measure (fresh secrets, the rate limits
raised but still in the path, LOG_LEVEL=WARNING), their database made ready (ensured or
re-created, then migrated) and Redis db flushed, and a quiet `Stack` of only the processes named.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import click
import redis.asyncio as aioredis

from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from stack.specs import StackSettings
from stack.supervisor import Stack

RAISED_LIMITS = {"RATE_LIMIT_PER_IP": "1000000", "RATE_LIMIT_PER_USER": "1000000"}


def redis_db_url(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


def new_secrets(name: str) -> tuple[str, str]:
    """(JWT secret, internal secret), fresh for each run."""
    return f"{name}-" + uuid.uuid4().hex * 2, f"{name}-internal-" + uuid.uuid4().hex * 2


def service_env(secret: str, internal: str, *, raise_limits: bool = True) -> dict[str, str]:
    """The caller's environment with the run's secrets, LOG_LEVEL=WARNING and (unless told not
    to) the rate limits raised: still in the path, never hit."""
    env = {**os.environ, "JWT_SECRET": secret, "INTERNAL_SECRET": internal}
    env["LOG_LEVEL"] = "WARNING"
    if raise_limits:
        env |= RAISED_LIMITS
    return env


def token_keys(secret: str) -> Any:
    """The signing keys for `secret`, to mint the run's access tokens."""
    from common.tokens import TokenKeys

    return TokenKeys.from_env({"JWT_SECRET": secret}, need_signing=True)


async def _recreate_database(database_url: str, database: str) -> None:
    """Drop and re-create `database`, so runs do not pile up holds."""
    admin = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


async def prepare_stores(
    database_url: str, redis_url: str | None = None, *, recreate: str | None = None
) -> aioredis.Redis | None:
    """The database ready (re-created when `recreate` names it, else created when missing), then
    migrated; with `redis_url`, that Redis db flushed and its client returned (for `flush_close`
    when the run ends)."""
    from booking.db import migrate

    if recreate:
        await _recreate_database(database_url, recreate)
    else:
        await asyncio.to_thread(ensure_database, database_url)
    await migrate(database_url)
    if redis_url is None:
        return None
    flusher = aioredis.Redis.from_url(redis_url)
    await flusher.flushdb()
    return flusher


async def flush_close(flusher: aioredis.Redis) -> None:
    await flusher.flushdb()
    await flusher.aclose()


def quiet_stack(
    run_dir: Path,
    env: dict[str, str],
    settings: StackSettings,
    endpoints: Endpoints,
    names: Sequence[str],
) -> Stack:
    """A `Stack` of only `names` on the given servers, no set-up run, its console swallowed."""
    return Stack(
        run_dir,
        env,
        settings=settings,
        endpoints=endpoints,
        names=list(names),
        run_setup=False,
        console=io.StringIO(),
    )


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "")


def say(text: str) -> None:
    click.echo(f"{datetime.now(UTC):%H:%M:%S} {text}", err=True)
