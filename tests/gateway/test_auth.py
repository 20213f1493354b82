"""Token checks at the gateway: only valid tokens of the configured algorithm pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.tokens import ISSUER, TokenKeys
from tests.gateway.conftest import seen_headers

PROTECTED = "/api/v1/bookings"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "user-1",
        "role": "customer",
        "typ": "access",
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


def hand_signed(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWT built by hand, so we can forge what PyJWT refuses to produce."""
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def assert_unauthorized(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["x-request-id"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_is_proxied_with_the_header_unchanged(
    gateway: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    token = token_for("user-42")
    answer = await gateway.get(PROTECTED, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    assert seen_headers(answer)["authorization"] == [f"Bearer {token}"]


async def test_missing_token_is_refused(gateway: httpx.AsyncClient) -> None:
    assert_unauthorized(await gateway.get(PROTECTED))
    assert_unauthorized(await gateway.get(PROTECTED, headers={"Authorization": "Basic abc"}))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(hand_signed({"alg": "none", "typ": "JWT"}, _claims(), None), id="alg-none"),
        pytest.param(
            hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(), b"another-secret" * 4),
            id="bad-signature",
        ),
        pytest.param(
            jwt.encode(_claims(), "k" * 48, algorithm="HS384"), id="wrong-algorithm-hs384"
        ),
        pytest.param("not.a.jwt", id="garbage"),
    ],
)
async def test_forged_or_broken_tokens_are_refused(gateway: httpx.AsyncClient, token: str) -> None:
    assert_unauthorized(await gateway.get(PROTECTED, headers=bearer(token)))


async def test_expired_token_is_refused(gateway: httpx.AsyncClient) -> None:
    from tests.gateway.conftest import HS_SECRET

    expired = hand_signed(
        {"alg": "HS256", "typ": "JWT"},
        _claims(iat=int(time.time()) - 900, exp=int(time.time()) - 60),
        HS_SECRET.encode(),
    )
    assert_unauthorized(await gateway.get(PROTECTED, headers=bearer(expired)))
    fresh = hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(), HS_SECRET.encode())
    assert (await gateway.get(PROTECTED, headers=bearer(fresh))).status_code == 200


async def test_refresh_style_token_is_not_an_access_token(gateway: httpx.AsyncClient) -> None:
    from tests.gateway.conftest import HS_SECRET

    refresh = hand_signed({"alg": "HS256"}, _claims(typ="refresh"), HS_SECRET.encode())
    assert_unauthorized(await gateway.get(PROTECTED, headers=bearer(refresh)))


async def test_public_route_ignores_a_bad_token_but_protected_refuses_it(
    gateway: httpx.AsyncClient,
) -> None:
    answer = await gateway.get("/api/v1/events", headers=bearer("garbage"))
    assert answer.status_code == 200
    assert (await gateway.post("/api/v1/auth/login", json={})).status_code == 200
    assert_unauthorized(await gateway.post("/api/v1/events", json={}))
    assert_unauthorized(await gateway.get("/api/v1/unknown/thing"))


@pytest.fixture(scope="module")
def rsa_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_file = tmp_path_factory.mktemp("jwt") / "public.pem"
    public_file.write_bytes(public)
    return private, public_file


async def test_rs256_with_public_key_only(
    start_gateway: Callable[..., Any], rsa_pair: tuple[str, Path]
) -> None:
    private, public_file = rsa_pair
    keys = TokenKeys.from_env(
        {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": str(public_file)}, need_signing=False
    )
    assert keys.signing_key is None
    public_pem = public_file.read_bytes()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    async with start_gateway(token_keys=keys) as client:
        good = jwt.encode(_claims(), private, algorithm="RS256")
        assert (await client.get(PROTECTED, headers=bearer(good))).status_code == 200

        # Algorithm confusion: HS256 "signed" with the public key PEM as the HMAC secret.
        confused = hand_signed({"alg": "HS256", "typ": "JWT"}, _claims(), public_pem)
        assert_unauthorized(await client.get(PROTECTED, headers=bearer(confused)))

        wrong_key = jwt.encode(_claims(), other, algorithm="RS256")
        assert_unauthorized(await client.get(PROTECTED, headers=bearer(wrong_key)))

        from tests.gateway.conftest import HS_SECRET

        hs_token = hand_signed({"alg": "HS256"}, _claims(), HS_SECRET.encode())
        assert_unauthorized(await client.get(PROTECTED, headers=bearer(hs_token)))
        assert_unauthorized(
            await client.get(
                PROTECTED, headers=bearer(hand_signed({"alg": "none"}, _claims(), None))
            )
        )
