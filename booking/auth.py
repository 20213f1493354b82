"""Auth use-cases: register, login, refresh (with rotation), and the identity of a request."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from booking.errors import (
    EmailTakenError,
    ForbiddenError,
    InvalidCredentialsError,
    UnauthorizedError,
)
from booking.messaging import TOPIC_USERS, Envelope, add_to_outbox
from booking.store import users as user_store
from booking.store.users import UserRow
from common.token_verifier import TokenVerifier
from common.tokens import Identity, TokenError, TokenKeys, bearer_token, issue_access_token

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown email as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash("booking-rush-timing-equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _password_matches(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def _refresh_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def body(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True)
class AuthService:
    pool: asyncpg.Pool
    keys: TokenKeys
    access_ttl_s: int
    refresh_ttl_s: int
    verifier: TokenVerifier = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verifier", TokenVerifier(self.keys, subject_is_uuid=True))

    async def register(self, *, email: str, password: str, name: str) -> UserRow:
        password_hash = await hash_password(password)
        async with self.pool.acquire() as conn, conn.transaction():
            user = await user_store.insert_user(
                conn, email=email, name=name, role="customer", password_hash=password_hash
            )
            if user is None:
                raise EmailTakenError(f"{email} is already registered")
            envelope = Envelope.new(
                "user.registered", user.user_id, {"user_id": user.user_id}, datetime.now(UTC)
            )
            await add_to_outbox(conn, TOPIC_USERS, envelope)
        return user

    async def ensure_user(self, *, email: str, password: str, name: str, role: str) -> UserRow:
        """Create the user, or update its role and password (the admin account at start-up)."""
        return await user_store.upsert_user(
            self.pool,
            email=email,
            name=name,
            role=role,
            password_hash=await hash_password(password),
        )

    async def login(self, *, email: str, password: str, now: datetime) -> TokenPair:
        user = await user_store.find_user_by_email(self.pool, email)
        if user is None:
            await _password_matches(_DUMMY_HASH, password)
            raise InvalidCredentialsError("wrong email or password")
        if not await _password_matches(user.password_hash, password):
            raise InvalidCredentialsError("wrong email or password")
        if _hasher.check_needs_rehash(user.password_hash):
            await user_store.update_password_hash(
                self.pool, user.user_id, await hash_password(password)
            )
        return await self._issue(user, family_id=str(uuid.uuid4()), now=now)

    async def refresh(self, *, refresh_token: str, now: datetime) -> TokenPair:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await user_store.take_refresh_token(conn, _refresh_hash(refresh_token), now)
                if row is None or row.revoked or row.expires_at <= now:
                    raise UnauthorizedError("refresh token is not valid")
                if not row.used:
                    user = await user_store.find_user(conn, row.user_id)
                    if user is None:
                        raise UnauthorizedError("user no longer exists")
                    return await self._issue(user, family_id=row.family_id, now=now, conn=conn)
            # A used refresh token came back: someone holds a copy. End the whole family
            # (committed on its own, since the error below must not roll it back).
            await user_store.revoke_refresh_family(conn, row.family_id, now)
        raise UnauthorizedError("refresh token was already used")

    async def logout(self, *, refresh_token: str, now: datetime) -> None:
        """Ends the sign-in the refresh token belongs to: its whole family is revoked, so
        neither it nor any token rotated from it refreshes again. Access tokens already issued
        stay valid until they expire (at most ACCESS_TOKEN_TTL_S); an unknown token changes
        nothing, and saying so would only help someone guessing tokens."""
        async with self.pool.acquire() as conn:
            family_id = await user_store.find_refresh_family(conn, _refresh_hash(refresh_token))
            if family_id is not None:
                await user_store.revoke_refresh_family(conn, family_id, now)

    async def me(self, identity: Identity) -> UserRow:
        user = await user_store.find_user(self.pool, identity.user_id)
        if user is None:
            raise UnauthorizedError("user no longer exists")
        return user

    def identify(self, authorization: str | None) -> Identity:
        """The verified identity of a request's bearer token (not the gateway's word)."""
        token = bearer_token(authorization)
        if token is None:
            raise UnauthorizedError("a bearer token is required")
        try:
            return self.verifier.verify(token)
        except TokenError as exc:
            raise UnauthorizedError("the access token is not valid") from exc

    async def _issue(
        self,
        user: UserRow,
        *,
        family_id: str,
        now: datetime,
        conn: asyncpg.Connection | asyncpg.Pool | None = None,
    ) -> TokenPair:
        refresh = secrets.token_urlsafe(32)
        await user_store.insert_refresh_token(
            conn or self.pool,
            token_hash=_refresh_hash(refresh),
            user_id=user.user_id,
            family_id=family_id,
            expires_at=now + timedelta(seconds=self.refresh_ttl_s),
        )
        access = issue_access_token(
            self.keys, user_id=user.user_id, role=user.role, ttl_s=self.access_ttl_s, now=now
        )
        return TokenPair(access, refresh, self.access_ttl_s)


def require_role(identity: Identity, *roles: str) -> None:
    if identity.role not in roles:
        raise ForbiddenError(f"needs role {' or '.join(roles)}")
