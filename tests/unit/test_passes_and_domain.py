from __future__ import annotations

from booking.domain import fingerprint
from booking.queue.passes import QueuePass, sign_pass, verify_pass

SECRET = "p" * 40


def test_pass_binds_event_user_and_expiry() -> None:
    token = sign_pass(SECRET, QueuePass("ev1", "u1", "pass-1", expires_ms=2_000))
    assert verify_pass(SECRET, token, event_id="ev1", user_id="u1", now_ms=1_000) == "pass-1"
    assert verify_pass(SECRET, token, event_id="ev2", user_id="u1", now_ms=1_000) == (
        "!rejected:other_event"
    )
    assert verify_pass(SECRET, token, event_id="ev1", user_id="u2", now_ms=1_000) == (
        "!rejected:other_user"
    )
    assert verify_pass(SECRET, token, event_id="ev1", user_id="u1", now_ms=2_000) == (
        "!rejected:expired"
    )
    assert verify_pass("q" * 40, token, event_id="ev1", user_id="u1", now_ms=1_000) == (
        "!rejected:not_ours"
    )


def test_tampered_or_garbage_passes_are_refused() -> None:
    token = sign_pass(SECRET, QueuePass("ev1", "u1", "pass-1", expires_ms=2_000))
    payload, signature = token.split(".")
    other = sign_pass(SECRET, QueuePass("ev1", "u1", "pass-2", expires_ms=9_000)).split(".")[0]
    for bad in (f"{other}.{signature}", f"{payload}.", "nodot", "", "a.b.c", "%%%.%%%"):
        assert verify_pass(SECRET, bad, event_id="ev1", user_id="u1", now_ms=1_000) == (
            "!rejected:not_ours"
        )


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    first = fingerprint({"event_id": "e", "zone_id": "z", "quantity": 2})
    assert first == fingerprint({"quantity": 2, "zone_id": "z", "event_id": "e"})
    assert first != fingerprint({"event_id": "e", "zone_id": "z", "quantity": 3})
