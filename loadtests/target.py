"""What the load tools aim at and how they get buyers quickly: the running stack's addresses, its
JWT secret, users written straight into PostgreSQL (no password hashing per user) and access
tokens minted with the stack's own secret."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.tokens import TokenKeys, issue_access_token
from stack.infra import DEFAULT_POSTGRES_URL
from stack.probes import database_name, postgres_answers, with_database
from stack.servers.base import ServerRecord

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"
DEFAULT_DATABASE = "booking_rush"
TOKEN_TTL_S = 3 * 3600


@dataclass(frozen=True)
class Target:
    """A running stack: the gateway's base URL (no /api/v1), its database and JWT secret."""

    gateway_url: str
    database_url: str
    jwt_secret: str

    @property
    def api(self) -> str:
        return self.gateway_url.rstrip("/") + "/api/v1"

    def keys(self) -> TokenKeys:
        return TokenKeys.from_env({"JWT_SECRET": self.jwt_secret}, need_signing=True)


def resolve_target(env: Mapping[str, str] | None = None, run_dir: Path | None = None) -> Target:
    """`make run`'s stack, found the way `make run` found its servers.

    GATEWAY_URL (default http://127.0.0.1:8080); DATABASE_URL when set, else the local
    PostgreSQL on 5432 when it answers, else the one `make run` started under `.run/postgres`;
    JWT_SECRET when set, else `.run/jwt_secret`.
    """
    env = dict(os.environ) if env is None else env
    run_dir = run_dir or ROOT / ".run"
    return Target(
        gateway_url=env.get("GATEWAY_URL") or DEFAULT_GATEWAY_URL,
        database_url=_database_url(env, run_dir),
        jwt_secret=_jwt_secret(env, run_dir),
    )


def find_database_url(env: Mapping[str, str] | None = None, run_dir: Path | None = None) -> str:
    """The stack's database URL, found as `resolve_target` finds it (RuntimeError: none)."""
    return _database_url(dict(os.environ) if env is None else env, run_dir or ROOT / ".run")


def _database_url(env: Mapping[str, str], run_dir: Path) -> str:
    configured = env.get("DATABASE_URL", "").strip()
    if configured:
        return (
            configured if database_name(configured) else with_database(configured, "booking_rush")
        )
    if postgres_answers(DEFAULT_POSTGRES_URL):
        return with_database(DEFAULT_POSTGRES_URL, DEFAULT_DATABASE)
    record = ServerRecord.read(run_dir / "postgres")
    if record is None:
        raise RuntimeError(
            "no PostgreSQL found for the stack: set DATABASE_URL, or start it with `make run`"
        )
    return f"postgresql://postgres@127.0.0.1:{record.port}/{DEFAULT_DATABASE}"


def _jwt_secret(env: Mapping[str, str], run_dir: Path) -> str:
    if env.get("JWT_SECRET"):
        return env["JWT_SECRET"]
    try:
        secret = (run_dir / "jwt_secret").read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        raise RuntimeError("no JWT secret: set JWT_SECRET or start the stack (`make run`) first")
    return secret


def mint_token(keys: TokenKeys, user_id: str, role: str = "customer") -> str:
    return issue_access_token(
        keys, user_id=user_id, role=role, ttl_s=TOKEN_TTL_S, now=datetime.now(UTC)
    )


async def insert_users(
    database_url: str,
    count: int,
    *,
    role: str = "customer",
    password_hash: str = "not-a-real-hash",
    label: str = "load",
) -> list[tuple[str, str]]:
    """`count` fresh users in one COPY; (user_id, email) pairs."""
    import asyncpg

    ids = [uuid.uuid4() for _ in range(count)]
    rows = [(i, f"{i.hex}@{label}.example.com", label, role, password_hash) for i in ids]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            "users",
            records=rows,
            columns=["user_id", "email", "name", "role", "password_hash"],
        )
    finally:
        await conn.close()
    return [(str(row[0]), row[1]) for row in rows]


def zone_breaks(stats: Mapping[str, Any]) -> list[str]:
    """What breaks the inventory invariants in an /admin/events/{id}/stats body (empty: none).

    No oversell in Redis or PostgreSQL, and available + held + sold = capacity in every zone.
    """
    problems = []
    for zone in stats.get("zones", []):
        name, capacity = zone["zone_id"][:8], zone["capacity"]
        if zone["available"] < 0:
            problems.append(f"zone {name}: available {zone['available']} < 0")
        if zone["available"] + zone["held"] + zone["sold"] != capacity:
            problems.append(
                f"zone {name}: available {zone['available']} + held {zone['held']} + sold "
                f"{zone['sold']} != capacity {capacity}"
            )
        if zone["held"] + zone["sold"] > capacity:
            problems.append(f"zone {name}: Redis held + sold > capacity {capacity}")
        pg = zone["postgres"]
        if pg["held"] + pg["sold"] > capacity:
            problems.append(
                f"zone {name}: PostgreSQL held {pg['held']} + sold {pg['sold']} > {capacity}"
            )
    if not stats.get("zones"):
        problems.append("the stats list no zones")
    return problems
