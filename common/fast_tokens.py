"""A shortcut that only ever accepts: HS256 access tokens of exactly the shape the booking
service issues, verified without PyJWT; anything else goes to PyJWT (common/tokens.py).

Why: in the queue-join storm every request brings a token the gateway has not seen (the cache
cannot help), and PyJWT's decode was ~20 % of the gateway's CPU per join under `make bench`
(py-spy): header JSON, key preparation per call, the claim checks' generality.

The shortcut accepts a token only if PyJWT would: the header segment is byte for byte the one
`issue_access_token` writes, the HMAC-SHA256 signature matches (constant-time compare), the
payload is a JSON object with only the claims we issue, each of the exact type we issue, and
`iss`, `typ`, `role`, `iat` and `exp` pass the same checks with the same leeway. Whatever does
not fit (another header, an extra claim, a float `exp`, a bad signature, an expired token) is
handed to PyJWT unchanged, so refusals and their messages are PyJWT's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import replace
from datetime import UTC, datetime

import orjson

from common.tokens import ISSUER, ROLES, Identity, TokenKeys, issue_access_token

_LEEWAY_S = 5  # as common.tokens
_CLAIMS = frozenset({"sub", "role", "typ", "iss", "iat", "exp", "jti"})


def _issued_header(keys: TokenKeys) -> bytes:
    """The header segment `issue_access_token` writes with these keys (HS256: the verify key
    is the signing key; the gateway is usually given only the former)."""
    signing = replace(keys, signing_key=keys.verify_key)
    sample = issue_access_token(
        signing, user_id="x", role=ROLES[0], ttl_s=60, now=datetime.now(UTC)
    )
    return sample.split(".", 1)[0].encode("ascii")


class FastHS256:
    """`accept(token)`: the Identity when the shortcut vouches for it, else None (ask PyJWT)."""

    def __init__(self, keys: TokenKeys) -> None:
        if keys.algorithm != "HS256":
            raise ValueError("the shortcut is for HS256 keys only")
        self._secret = keys.verify_key.encode("utf-8")
        self._header = _issued_header(keys)

    def accept(self, token: str) -> Identity | None:
        try:
            raw = token.encode("ascii")
            signing_input, signature = raw.rsplit(b".", 1)
            header, payload = signing_input.split(b".", 1)
            if header != self._header or b"." in payload:
                return None
            expected = hmac.new(self._secret, signing_input, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _b64decode(signature)):
                return None
            claims = orjson.loads(_b64decode(payload))
        except (ValueError, UnicodeError):
            return None
        if type(claims) is not dict or not _CLAIMS.issuperset(claims):
            return None
        sub, role, typ = claims.get("sub"), claims.get("role"), claims.get("typ")
        iss, iat, exp = claims.get("iss"), claims.get("iat"), claims.get("exp")
        if (
            type(sub) is not str
            or type(iat) is not int
            or type(exp) is not int
            or ("jti" in claims and type(claims["jti"]) is not str)
            or iss != ISSUER
            or typ != "access"
            or role not in ROLES
        ):
            return None
        now = time.time()
        if iat > now + _LEEWAY_S or exp <= now - _LEEWAY_S:
            return None
        return Identity(user_id=sub, role=role, expires_at=exp)


def _b64decode(segment: bytes) -> bytes:
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
