"""Queue passes: one-time tokens bound to a user and an event, signed with the internal secret.

The signature makes a pass unforgeable and binds it to (event, user, expiry); Redis keeps the
pass record, and the reserve script consumes it, so it works once. Format:
`<base64url(event_id|user_id|pass_id|expires_ms)>.<base64url(hmac-sha256)>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

# Handed to the reserve script in place of a pass that failed here (followed by why), so the
# script answers PASS_INVALID with that reason when the event's queue is on and ignores it when
# the queue is off.
REJECTED_PASS = "!rejected:"


@dataclass(frozen=True, slots=True)
class QueuePass:
    event_id: str
    user_id: str
    pass_id: str
    expires_ms: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"queue-pass:" + payload, hashlib.sha256).digest()


def sign_pass(secret: str, queue_pass: QueuePass) -> str:
    payload = (
        f"{queue_pass.event_id}|{queue_pass.user_id}|{queue_pass.pass_id}|{queue_pass.expires_ms}"
    ).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, payload))}"


def verify_pass(secret: str, token: str, *, event_id: str, user_id: str, now_ms: int) -> str:
    """The pass id when the token is ours, for this event and user, and unexpired; else
    REJECTED_PASS and why: `not_ours`, `other_event`, `other_user` or `expired`."""
    try:
        payload_text, signature_text = token.split(".", 1)
        payload = _unb64(payload_text)
        signature = _unb64(signature_text)
        if not hmac.compare_digest(signature, _signature(secret, payload)):
            return REJECTED_PASS + "not_ours"
        pass_event, pass_user, pass_id, expires = payload.decode().split("|")
        if pass_event != event_id:
            return REJECTED_PASS + "other_event"
        if pass_user != user_id:
            return REJECTED_PASS + "other_user"
        if int(expires) <= now_ms:
            return REJECTED_PASS + "expired"
        return pass_id
    except (ValueError, UnicodeDecodeError):
        return REJECTED_PASS + "not_ours"
