"""The token cache of the Authenticator: verified once, trusted until expiry, never beyond."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from common.tokens import TokenError, TokenKeys, issue_access_token
from gateway.guard import Authenticator
from tests.gateway.conftest import HS_SECRET


def test_verified_tokens_are_cached_until_they_expire(hs_keys: TokenKeys) -> None:
    authenticator = Authenticator(TokenKeys("HS256", verify_key=HS_SECRET))
    token = issue_access_token(
        hs_keys, user_id="u-1", role="customer", ttl_s=600, now=datetime.now(UTC)
    )
    first = authenticator.verify(token)
    assert authenticator.verify(token) is first  # served from the cache
    assert first.user_id == "u-1"

    stale = issue_access_token(
        hs_keys,
        user_id="u-2",
        role="customer",
        ttl_s=60,
        now=datetime.now(UTC) - timedelta(seconds=120),
    )
    with pytest.raises(TokenError):
        authenticator.verify(stale)


def test_a_cached_token_is_reverified_after_its_expiry(hs_keys: TokenKeys) -> None:
    authenticator = Authenticator(TokenKeys("HS256", verify_key=HS_SECRET), max_cached=2)
    token = issue_access_token(
        hs_keys, user_id="u-3", role="customer", ttl_s=600, now=datetime.now(UTC)
    )
    identity = authenticator.verify(token)
    # Pretend the cached identity has expired: the cache must not answer for it.
    authenticator._verified[token] = type(identity)(
        user_id="someone-else", role="admin", expires_at=int(time.time()) - 1
    )
    assert authenticator.verify(token).user_id == "u-3"
    for n in range(3):  # the cache stays bounded
        other = issue_access_token(
            hs_keys, user_id=f"n-{n}", role="customer", ttl_s=600, now=datetime.now(UTC)
        )
        authenticator.verify(other)
    assert len(authenticator._verified) <= 2
