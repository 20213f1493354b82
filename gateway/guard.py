"""Who may pass: the bearer token check for protected routes (optional on public ones)."""

from __future__ import annotations

import logging
import time

from starlette.types import Scope

from common.tokens import Identity, TokenError, TokenKeys, bearer_token, verify_access_token
from gateway.routes import RouteSpec

logger = logging.getLogger(__name__)

CHALLENGE_MISSING = 'Bearer realm="booking-rush"'
CHALLENGE_INVALID = 'Bearer realm="booking-rush", error="invalid_token"'
MAX_CACHED_TOKENS = 100_000
MAX_CACHED_TOKENS = 100_000


class AuthError(Exception):
    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.challenge = challenge


def authorization_header(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


class Authenticator:
    """Verifies bearer tokens, remembering the ones already verified.

    A client sends the same token on every request for its lifetime, and verifying costs about
    100 us (far more with RS256), so verified tokens are kept until they expire. Only successes
    are cached; the cache is dropped whole when full, which is cheap and bounded.
    """

    def __init__(self, keys: TokenKeys, max_cached: int = MAX_CACHED_TOKENS) -> None:
        self.keys = keys
        self.max_cached = max_cached
        self._verified: dict[str, Identity] = {}

    def verify(self, token: str) -> Identity:
        identity = self._verified.get(token)
        if identity is not None:
            if time.time() < identity.expires_at:
                return identity
            del self._verified[token]
        identity = verify_access_token(self.keys, token)
        if len(self._verified) >= self.max_cached:
            self._verified.clear()
        self._verified[token] = identity
        return identity

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
