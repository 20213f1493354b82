"""Access tokens: JWTs signed by the booking service, verified by the gateway and the service.

HS256 with a shared secret by default; RS256 when a key pair is configured (the gateway then
needs only the public key). Only the configured algorithm is accepted, so `alg: none` and
algorithm-confusion tokens are refused.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jwt

ALGORITHMS = ("HS256", "RS256")
ISSUER = "booking-rush"
ROLES = ("customer", "organizer", "admin", "staff")  # staff: door staff, check-in only
_LEEWAY_S = 5


class TokenError(Exception):
    """The token is missing, malformed, expired, or not signed by us."""


@dataclass(frozen=True)
class TokenKeys:
    algorithm: str
    verify_key: str
    signing_key: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, need_signing: bool) -> TokenKeys:
        """Read JWT_ALGORITHM, JWT_SECRET, JWT_PRIVATE_KEY_FILE, JWT_PUBLIC_KEY_FILE."""
        env = dict(os.environ) if env is None else env
        algorithm = env.get("JWT_ALGORITHM", "HS256").upper()
        if algorithm not in ALGORITHMS:
            raise ValueError(f"JWT_ALGORITHM must be one of {ALGORITHMS}, not {algorithm!r}")
        if algorithm == "HS256":
            secret = env.get("JWT_SECRET", "")
            if not secret:
                raise ValueError("JWT_SECRET is required for HS256 (make run generates one)")
            if len(secret) < 32:
                raise ValueError("JWT_SECRET must be at least 32 characters")
            return cls("HS256", verify_key=secret, signing_key=secret)
        public_file = env.get("JWT_PUBLIC_KEY_FILE", "")
        if not public_file:
            raise ValueError("RS256 needs JWT_PUBLIC_KEY_FILE")
        public = Path(public_file).read_text()
        private = None
        if need_signing:
            private_file = env.get("JWT_PRIVATE_KEY_FILE", "")
            if not private_file:
                raise ValueError("RS256 needs JWT_PRIVATE_KEY_FILE to issue tokens")
            private = Path(private_file).read_text()
        return cls("RS256", verify_key=public, signing_key=private)


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class Identity:
    user_id: str
    role: str
    expires_at: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_access_token(
    keys: TokenKeys, *, user_id: str, role: str, ttl_s: int, now: datetime
) -> str:
    if keys.signing_key is None:
        raise TokenError("these keys cannot sign")
    issued = int(now.timestamp())
    claims = {
        "sub": user_id,
        "role": role,
        "typ": "access",
        "iss": ISSUER,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, keys.signing_key, algorithm=keys.algorithm)


def verify_access_token(keys: TokenKeys, token: str) -> Identity:
    try:
        claims = jwt.decode(
            token,
            keys.verify_key,
            algorithms=[keys.algorithm],
            issuer=ISSUER,
            leeway=_LEEWAY_S,
            options={"require": ["sub", "exp", "iat", "role", "typ"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    if claims.get("typ") != "access" or claims.get("role") not in ROLES:
        raise TokenError("not an access token")
    return Identity(user_id=str(claims["sub"]), role=claims["role"], expires_at=claims["exp"])


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
