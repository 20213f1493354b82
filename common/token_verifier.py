"""`TokenVerifier`: access tokens verified once, then remembered until they expire.

Both the gateway and the booking service verify every request's token. HS256 tokens of the
exact shape we issue go through the shortcut of common/fast_tokens.py; whatever it does not
vouch for (another algorithm, an unexpected claim, a refusal) is PyJWT's to decide.
"""

from __future__ import annotations

import time
import uuid

from common.fast_tokens import FastHS256
from common.tokens import Identity, TokenError, TokenKeys, verify_access_token


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


class TokenVerifier:
    """Verifies access tokens, remembering the ones already verified.

    A client sends the same token on every request for its lifetime, and verifying costs about
    100 us (far more with RS256), so verified tokens are kept until they expire. Only successes
    are cached; the cache is dropped whole when full, which is cheap and bounded.
    """

    def __init__(
        self, keys: TokenKeys, max_cached: int = 100_000, *, subject_is_uuid: bool = False
    ) -> None:
        self.keys = keys
        self.max_cached = max_cached
        # The booking service puts the subject into uuid columns: a signed token with another
        # kind of subject (a key shared with another system, a bug) is refused, not a 500.
        self.subject_is_uuid = subject_is_uuid
        self._verified: dict[str, Identity] = {}
        self._fast = FastHS256(keys) if keys.algorithm == "HS256" else None

    def verify(self, token: str) -> Identity:
        identity = self._verified.get(token)
        if identity is not None:
            if time.time() < identity.expires_at:
                return identity
            del self._verified[token]
        identity = self.verify_uncached(token)
        if self.subject_is_uuid and not _is_uuid(identity.user_id):
            raise TokenError("the subject is not a user id")
        if len(self._verified) >= self.max_cached:
            self._verified.clear()
        self._verified[token] = identity
        return identity

    def verify_uncached(self, token: str) -> Identity:
        """The check itself, without the cache."""
        if self._fast is not None:
            identity = self._fast.accept(token)
            if identity is not None:
                return identity
        return verify_access_token(self.keys, token)
