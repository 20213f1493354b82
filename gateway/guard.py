"""Who may pass: the bearer token check for protected routes (optional on public ones)."""

from __future__ import annotations

import logging

from starlette.types import Scope

from common.tokens import Identity, TokenError, TokenKeys, TokenVerifier, bearer_token
from gateway.fast_tokens import FastHS256
from gateway.routes import RouteSpec

logger = logging.getLogger(__name__)

CHALLENGE_MISSING = 'Bearer realm="booking-rush"'
CHALLENGE_INVALID = 'Bearer realm="booking-rush", error="invalid_token"'


class AuthError(Exception):
    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.challenge = challenge


def authorization_header(scope: Scope) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


class Authenticator(TokenVerifier):
    """Verifies bearer tokens (cached until they expire, see TokenVerifier) per route rules;
    HS256 tokens of the shape we issue are checked without PyJWT (gateway/fast_tokens.py)."""

    def __init__(self, keys: TokenKeys, max_cached: int = 100_000) -> None:
        super().__init__(keys, max_cached)
        self._fast = FastHS256(keys) if keys.algorithm == "HS256" else None

    def verify_uncached(self, token: str) -> Identity:
        if self._fast is not None:
            identity = self._fast.accept(token)
            if identity is not None:
                return identity
        return super().verify_uncached(token)

    def authenticate(self, scope: Scope, spec: RouteSpec, method: str) -> Identity | None:
        """The caller's identity, None for an anonymous call of a public route.

        Raises AuthError on a protected route without a valid token. On a public route a bad
        token is ignored (the caller is anonymous); booking sees the header unchanged anyway.
        """
        public = spec.is_public(method)
        token = bearer_token(authorization_header(scope))
        if token is None:
            if public:
                return None
            raise AuthError("A bearer access token is required", CHALLENGE_MISSING)
        try:
            return self.verify(token)
        except TokenError as exc:
            if public:
                return None
            logger.debug("refused token: %s", exc)
            raise AuthError("The access token is not valid", CHALLENGE_INVALID) from exc
