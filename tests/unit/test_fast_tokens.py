"""common/fast_tokens.py: the shortcut accepts exactly the tokens we issue, and for anything
else the verifier's answer (the gateway's and the booking service's) is PyJWT's
(common/tokens.py), refusal for refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from common.fast_tokens import FastHS256
from common.token_verifier import TokenVerifier
from common.tokens import ISSUER, TokenError, TokenKeys, issue_access_token, verify_access_token

HS_SECRET = "fast-tokens-tests-secret-" + "x" * 32

KEYS = TokenKeys("HS256", verify_key=HS_SECRET)  # as the gateway gets them: no signing key
SIGNING = TokenKeys("HS256", verify_key=HS_SECRET, signing_key=HS_SECRET)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "role": "customer",
        "typ": "access",
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
        "jti": "j",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def signed(payload: dict[str, Any], secret: str = HS_SECRET, **options: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", **options)


def outcome(check: Any, token: str) -> Any:
    try:
        return check(token)
    except TokenError:
        return "refused"


def test_issued_tokens_are_accepted_by_the_shortcut() -> None:
    token = issue_access_token(
        SIGNING, user_id="u-9", role="admin", ttl_s=60, now=datetime.now(UTC)
    )
    identity = FastHS256(KEYS).accept(token)
    assert identity == verify_access_token(KEYS, token)
    assert identity is not None and identity.user_id == "u-9" and identity.role == "admin"


def _segments(token: str) -> list[str]:
    return token.split(".")


def _other_header_order() -> str:
    header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS256"}').rstrip(b"=").decode()
    payload = _segments(signed(claims()))[1]
    body = f"{header}.{payload}"
    mac = hmac.new(HS_SECRET.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


CASES = {
    "bad signature": lambda: signed(claims(), secret="another-secret-" + "y" * 32),
    "expired": lambda: signed(claims(exp=int(time.time()) - 60)),
    "expired within the leeway": lambda: signed(claims(exp=int(time.time()) - 2)),
    "issued in the future": lambda: signed(claims(iat=int(time.time()) + 60)),
    "an audience": lambda: signed(claims(aud="someone")),
    "not before, later": lambda: signed(claims(nbf=int(time.time()) + 60)),
    "not before, past": lambda: signed(claims(nbf=int(time.time()) - 60)),
    "float expiry": lambda: signed(claims(exp=time.time() + 600)),
    "a refresh token": lambda: signed(claims(typ="refresh")),
    "an unknown role": lambda: signed(claims(role="root")),
    "another issuer": lambda: signed(claims(iss="elsewhere")),
    "no subject": lambda: signed(claims(sub=...)),
    "a numeric subject": lambda: signed(claims(sub=42)),
    "no issued-at": lambda: signed(claims(iat=...)),
    "alg none": lambda: jwt.encode(claims(), "", algorithm="none"),
    "another header order": _other_header_order,
    "an extra header": lambda: signed(claims(), headers={"kid": "k1"}),
    "four segments": lambda: signed(claims()) + ".x",
    "garbage": lambda: "not-a-token",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_anything_else_gets_the_answer_pyjwt_gives(case: str) -> None:
    token = CASES[case]()
    fast = FastHS256(KEYS)
    expected = outcome(lambda t: verify_access_token(KEYS, t), token)
    assert outcome(TokenVerifier(KEYS).verify, token) == expected
    if expected == "refused":
        assert fast.accept(token) is None  # the shortcut never accepts what PyJWT refuses
    elif fast.accept(token) is not None:
        assert fast.accept(token) == expected


def test_rs256_keys_take_no_shortcut() -> None:
    with pytest.raises(ValueError):
        FastHS256(TokenKeys("RS256", verify_key="pem"))
