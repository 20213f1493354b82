"""Ticket codes: what a buyer shows at the door, verifiable without a database round trip.

A code is `base64url(payload || mac)`, no padding, where payload is
`version (1 byte) | ticket id (16) | event id (16) | unit (2, big-endian) | seat label (UTF-8)`
and mac is HMAC-SHA256 over `"ticket:" + payload`, cut to 16 bytes. A scanner holding the secret
knows from the code alone that we issued it, for which event, and for which seat (an empty label
means a general-admission unit); whether it still admits someone (not refunded, not used) only
the tickets table knows. 68 characters for a general-admission ticket, a few more per label
character: small enough for any QR code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass

VERSION = 1
MAC_BYTES = 16  # 128 bits: forging one takes 2^128 tries, and every try is a request
_HEAD = 1 + 16 + 16 + 2
MAX_LABEL_BYTES = 128  # a seat label is at most 32 characters (booking/schemas.py)
# The longest code a signer makes; anything longer is refused before decoding.
MAX_CODE_LENGTH = (_HEAD + MAX_LABEL_BYTES + MAC_BYTES) * 4 // 3 + 4
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True, slots=True)
class TicketClaim:
    """What a code says: the ticket, its event and its place (seat label or unit number)."""

    ticket_id: str
    event_id: str
    unit: int
    seat_id: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TicketSigner:
    """Signs and verifies ticket codes with one secret (TICKET_SECRET, see README "Settings")."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                "TICKET_SECRET (else INTERNAL_SECRET or JWT_SECRET) of "
                f"{MIN_SECRET_LENGTH}+ characters is required to sign tickets"
            )
        self._key = secret.encode()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, b"ticket:" + payload, hashlib.sha256).digest()[:MAC_BYTES]

    def sign(self, claim: TicketClaim) -> str:
        label = (claim.seat_id or "").encode()
        if len(label) > MAX_LABEL_BYTES:
            raise ValueError(f"a seat label is at most {MAX_LABEL_BYTES} bytes")
        payload = (
            bytes([VERSION])
            + uuid.UUID(claim.ticket_id).bytes
            + uuid.UUID(claim.event_id).bytes
            + claim.unit.to_bytes(2, "big")
            + label
        )
        return _b64(payload + self._mac(payload))

    def verify(self, code: str) -> TicketClaim | None:
        """The claim of a code we signed; None for anything else (forged, altered, garbled)."""
        if not code or len(code) > MAX_CODE_LENGTH or not code.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
        except (binascii.Error, ValueError):
            return None
        # One ticket, one spelling: an encoding with other unused bits is not our code.
        if _b64(raw) != code or len(raw) < _HEAD + MAC_BYTES or raw[0] != VERSION:
            return None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            label = payload[_HEAD:].decode()
        except UnicodeDecodeError:
            return None
        return TicketClaim(
            ticket_id=str(uuid.UUID(bytes=payload[1:17])),
            event_id=str(uuid.UUID(bytes=payload[17:33])),
            unit=int.from_bytes(payload[33:35], "big"),
            seat_id=label or None,
        )
