"""Who may pass: the bearer token check for protected routes (optional on public ones)."""

from __future__ import annotations

import logging

from starlette.types import Scope

from common.token_verifier import TokenVerifier
from common.tokens import Identity, TokenError, bearer_token
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
    """Verifies bearer tokens (cached until they expire, see common/token_verifier.py) per
    route rules."""

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
