"""Users and refresh tokens in PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class UserRow:
    user_id: str
    email: str
    name: str
    role: str
    password_hash: str

    def public(self) -> dict[str, str]:
        return {"user_id": self.user_id, "email": self.email, "name": self.name, "role": self.role}


def _user(row: asyncpg.Record | None) -> UserRow | None:
    if row is None:
        return None
    return UserRow(
        user_id=str(row["user_id"]),
        email=row["email"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
    )


async def insert_user(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    email: str,
    name: str,
    role: str,
    password_hash: str,
) -> UserRow | None:
    """The new user, or None when the email is taken."""
    row = await conn.fetchrow(
        """INSERT INTO users (user_id, email, name, role, password_hash)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (lower(email)) DO NOTHING
           RETURNING *""",
        uuid.uuid4(),
        email,
        name,
        role,
        password_hash,
    )
    return _user(row)


async def upsert_user(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    email: str,
    name: str,
    role: str,
    password_hash: str,
) -> UserRow:
    row = await conn.fetchrow(
        """INSERT INTO users (user_id, email, name, role, password_hash)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (lower(email)) DO UPDATE
              SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash
           RETURNING *""",
        uuid.uuid4(),
        email,
        name,
        role,
        password_hash,
    )
    user = _user(row)
    assert user is not None
    return user


async def find_user_by_email(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> UserRow | None:
    return _user(await conn.fetchrow("SELECT * FROM users WHERE lower(email) = lower($1)", email))


async def find_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> UserRow | None:
    return _user(await conn.fetchrow("SELECT * FROM users WHERE user_id = $1", uuid.UUID(user_id)))


async def update_password_hash(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, password_hash: str
) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2 WHERE user_id = $1", uuid.UUID(user_id), password_hash
    )


async def insert_refresh_token(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    token_hash: bytes,
    user_id: str,
    family_id: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at)
           VALUES ($1, $2, $3, $4)""",
        token_hash,
        uuid.UUID(user_id),
        uuid.UUID(family_id),
        expires_at,
    )


@dataclass(frozen=True)
class RefreshTokenRow:
    user_id: str
    family_id: str
    expires_at: datetime
    used: bool
    revoked: bool


async def take_refresh_token(
    conn: asyncpg.Connection, token_hash: bytes, now: datetime
) -> RefreshTokenRow | None:
    """Marks the token used and returns what it was before; locks the row (in a transaction)."""
    row = await conn.fetchrow(
        "SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", token_hash
    )
    if row is None:
        return None
    if row["used_at"] is None:
        await conn.execute(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now
        )
    return RefreshTokenRow(
        user_id=str(row["user_id"]),
        family_id=str(row["family_id"]),
        expires_at=row["expires_at"],
        used=row["used_at"] is not None,
        revoked=row["revoked_at"] is not None,
    )


async def find_refresh_family(
    conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes
) -> str | None:
    value = await conn.fetchval(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1", token_hash
    )
    return None if value is None else str(value)


async def revoke_refresh_family(conn: asyncpg.Connection, family_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        uuid.UUID(family_id),
        now,
    )


async def find_email_address(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> str | None:
    value = await conn.fetchval("SELECT email FROM users WHERE user_id = $1", uuid.UUID(user_id))
    return None if value is None else str(value)
