from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.token_verifier import TokenVerifier
from common.tokens import (
    TokenError,
    TokenKeys,
    bearer_token,
    issue_access_token,
    verify_access_token,
)

SECRET = "s" * 48


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def rsa_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder = tmp_path_factory.mktemp("keys")
    private = folder / "private.pem"
    public = folder / "public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_hs256_round_trip_and_expiry() -> None:
    keys = TokenKeys.from_env({"JWT_SECRET": SECRET}, need_signing=True)
    token = issue_access_token(keys, user_id="u1", role="organizer", ttl_s=60, now=now())
    identity = verify_access_token(keys, token)
    assert (identity.user_id, identity.role) == ("u1", "organizer")
    old = issue_access_token(
        keys, user_id="u1", role="customer", ttl_s=60, now=now() - timedelta(hours=1)
    )
    with pytest.raises(TokenError):
        verify_access_token(keys, old)


def test_rs256_service_signs_and_gateway_verifies_with_public_key_only(
    rsa_files: tuple[Path, Path],
) -> None:
    private, public = rsa_files
    env = {
        "JWT_ALGORITHM": "RS256",
        "JWT_PRIVATE_KEY_FILE": str(private),
        "JWT_PUBLIC_KEY_FILE": str(public),
    }
    signer = TokenKeys.from_env(env, need_signing=True)
    verifier = TokenKeys.from_env(
        {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": str(public)}, need_signing=False
    )
    assert verifier.signing_key is None
    token = issue_access_token(signer, user_id="u2", role="admin", ttl_s=60, now=now())
    assert verify_access_token(verifier, token).role == "admin"
    # The classic confusion: an HS256 token "signed" with the public key as HMAC secret.
    forged = jwt.encode(
        {"sub": "u2", "role": "admin", "typ": "access", "iss": "booking-rush",
         "iat": int(now().timestamp()), "exp": int(now().timestamp()) + 60},
        "x" * 48,
        algorithm="HS256",
    )  # fmt: skip
    with pytest.raises(TokenError):
        verify_access_token(verifier, forged)


def test_refuses_none_algorithm_wrong_type_and_missing_claims() -> None:
    keys = TokenKeys.from_env({"JWT_SECRET": SECRET}, need_signing=True)
    claims = {"sub": "u", "role": "admin", "typ": "access", "iss": "booking-rush",
              "iat": int(now().timestamp()), "exp": int(now().timestamp()) + 60}  # fmt: skip
    # PyJWT's annotation of `key` leaves out None, the one key its "none" algorithm accepts
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    refresh_typed = jwt.encode({**claims, "typ": "refresh"}, SECRET, algorithm="HS256")
    no_role = jwt.encode({k: v for k, v in claims.items() if k != "role"}, SECRET, "HS256")
    other_issuer = jwt.encode({**claims, "iss": "someone"}, SECRET, algorithm="HS256")
    for token in (unsigned, refresh_typed, no_role, other_issuer, "a.b.c", ""):
        with pytest.raises(TokenError):
            verify_access_token(keys, token)


def test_settings_refuse_weak_or_missing_keys() -> None:
    with pytest.raises(ValueError):
        TokenKeys.from_env({"JWT_SECRET": "short"}, need_signing=True)
    with pytest.raises(ValueError):
        TokenKeys.from_env({}, need_signing=True)
    with pytest.raises(ValueError):
        TokenKeys.from_env({"JWT_ALGORITHM": "none", "JWT_SECRET": SECRET}, need_signing=True)


def test_verifier_cache_forgets_expired_tokens() -> None:
    keys = TokenKeys.from_env({"JWT_SECRET": SECRET}, need_signing=True)
    verifier = TokenVerifier(keys, max_cached=2)
    short = issue_access_token(
        keys, user_id="u", role="customer", ttl_s=1, now=now() - timedelta(seconds=10)
    )
    # Past exp (+ leeway): never served from the cache, and refused.
    with pytest.raises(TokenError):
        verifier.verify(short)
    tokens = [
        issue_access_token(keys, user_id=f"u{i}", role="customer", ttl_s=60, now=now())
        for i in range(3)
    ]
    assert [verifier.verify(t).user_id for t in tokens] == ["u0", "u1", "u2"]
    assert len(verifier._verified) <= 2


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
