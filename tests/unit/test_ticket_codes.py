"""Ticket codes: a code we signed verifies to what it carries, offline; any change to it, any
other key and any garbage is refused."""

from __future__ import annotations

import base64
import uuid

import pytest

from booking.settings import Settings
from booking.tickets import TicketClaim, TicketSigner
from booking.tickets.codes import MAX_CODE_LENGTH

SECRET = "ticket-secret-" + "t" * 40
SIGNER = TicketSigner(SECRET)


def _claim(seat_id: str | None = None, unit: int = 1) -> TicketClaim:
    return TicketClaim(str(uuid.uuid4()), str(uuid.uuid4()), unit, seat_id)


@pytest.mark.parametrize(
    ("seat_id", "unit"), [(None, 1), (None, 65535), ("A12", 3), ("Loge Ø 7", 1), ("x" * 32, 2)]
)
def test_a_signed_code_verifies_to_its_claim(seat_id: str | None, unit: int) -> None:
    claim = _claim(seat_id, unit)
    code = SIGNER.sign(claim)
    assert SIGNER.verify(code) == claim
    assert code.isascii() and all(c.isalnum() or c in "-_" for c in code)
    assert len(code) <= MAX_CODE_LENGTH


def test_a_general_admission_code_is_short() -> None:
    assert len(SIGNER.sign(_claim())) == 68


def test_every_altered_character_is_refused() -> None:
    code = SIGNER.sign(_claim("B7"))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position, original in enumerate(code):
        replacement = alphabet[(alphabet.index(original) + 1) % len(alphabet)]
        altered = code[:position] + replacement + code[position + 1 :]
        assert SIGNER.verify(altered) is None, position


def test_a_code_with_another_seat_or_ticket_spliced_in_is_refused() -> None:
    first, second = SIGNER.sign(_claim("A1")), SIGNER.sign(_claim("A2"))
    raw_first = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    raw_second = base64.urlsafe_b64decode(second + "=" * (-len(second) % 4))
    spliced = raw_second[:-16] + raw_first[-16:]  # the second's claim under the first's mac
    assert SIGNER.verify(base64.urlsafe_b64encode(spliced).rstrip(b"=").decode()) is None


def test_a_code_signed_with_another_secret_is_refused() -> None:
    other = TicketSigner("another-secret-" + "o" * 40)
    assert SIGNER.verify(other.sign(_claim())) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a code",
        "!!!!",
        "A",
        "AAAA",
        "é" * 20,
        "A" * (MAX_CODE_LENGTH + 1),
        "A" * 68,
    ],
)
def test_garbage_is_refused(garbage: str) -> None:
    assert SIGNER.verify(garbage) is None


def test_other_spellings_of_a_valid_code_are_refused() -> None:
    code = next(c for c in (SIGNER.sign(_claim()) for _ in range(200)) if "-" in c or "_" in c)
    assert SIGNER.verify(code) is not None
    assert SIGNER.verify(code + "=") is None  # padding
    assert SIGNER.verify(code.replace("-", "+").replace("_", "/")) is None  # standard alphabet
    assert SIGNER.verify(f" {code}") is None
    raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
    other_version = base64.urlsafe_b64encode(bytes([2]) + raw[1:]).decode().rstrip("=")
    assert SIGNER.verify(other_version) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="TICKET_SECRET"):
        TicketSigner("too-short")


def test_the_ticket_secret_is_its_own_or_the_internal_one() -> None:
    base = {"JWT_SECRET": "j" * 40, "INTERNAL_SECRET": "i" * 40}
    assert Settings.from_env(base).ticket_secret == "i" * 40
    assert Settings.from_env({**base, "TICKET_SECRET": "k" * 40}).ticket_secret == "k" * 40
    with pytest.raises(ValueError, match="TICKET_SECRET"):
        Settings.from_env({**base, "TICKET_SECRET": "short"})
