"""Every email kind rendered (text and escaped HTML), the MIME message the notifier sends, and
SMTP_URL read into its settings (TLS, STARTTLS, credentials)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from booking.notifications import (
    KINDS,
    Email,
    confirmation_email,
    hold_expiring_email,
    payment_declined_email,
    refund_email,
    waitlist_offer_email,
)
from booking.payments import confirmation_email as payments_confirmation_email
from common.settings import Env
from workers.smtp import SmtpConfig, SmtpPermanentError, build_message, message_id

BOOKING = "7d2c1f8e-0000-4000-8000-000000000001"


def one_of_each() -> list[Email]:
    at = datetime(2026, 12, 3, 18, 30, tzinfo=UTC)
    return [
        confirmation_email(
            "buyer@example.com",
            booking_id=BOOKING,
            quantity=2,
            amount_minor=5000,
            currency="EUR",
            tickets=[
                {"code": "TK-1", "zone_id": "floor", "seat_id": "A1"},
                {"code": "TK-2", "zone_id": "floor", "seat_id": None},
            ],
        ),
        refund_email(
            "buyer@example.com",
            booking_id=BOOKING,
            amount_minor=5000,
            currency="EUR",
            refund_ref="re_1",
        ),
        payment_declined_email(
            "buyer@example.com", booking_id=BOOKING, amount_minor=5000, currency="EUR"
        ),
        hold_expiring_email(
            "buyer@example.com",
            booking_id=BOOKING,
            event_id="ev-1",
            event_name="Night <Show>",
            quantity=2,
            expires_at=at,
        ),
        waitlist_offer_email(
            "buyer@example.com",
            event_id="ev-1",
            event_name="Night <Show>",
            zone_id="floor",
            quantity=1,
            expires_at=at,
            offer_url="https://tickets.example/offer?id=1&x=2",
            offer_id="off-1",
        ),
    ]


def test_every_kind_has_a_subject_text_and_html_from_its_data() -> None:
    emails = one_of_each()
    assert [mail.kind for mail in emails] == list(KINDS)
    for mail in emails:
        assert mail.subject and "\n" not in mail.subject
        assert mail.text.strip()
        assert mail.html.startswith("<!DOCTYPE html>")
        assert "$" not in mail.text + mail.html, "a placeholder was left unfilled"
    confirmed, refunded, declined, expiring, offer = emails
    assert "TK-1" in confirmed.text and "seat A1" in confirmed.text
    assert "general admission" in confirmed.text and "<code>TK-2</code>" in confirmed.html
    assert "50.00 EUR" in refunded.text and "re_1" in refunded.html
    assert "did not go through" in declined.subject
    assert "2026-12-03T18:30:00+00:00" in expiring.text
    assert offer.data["offer_id"] == "off-1" and offer.key == "ev-1"


def test_html_escapes_what_a_buyer_or_an_organiser_typed() -> None:
    expiring, offer = one_of_each()[3:]
    assert "Night <Show>" in expiring.text
    assert "<Show>" not in expiring.html and "Night &lt;Show&gt;" in expiring.html
    assert 'href="https://tickets.example/offer?id=1&amp;x=2"' in offer.html


def test_the_confirmation_keeps_its_old_signature() -> None:
    mail = payments_confirmation_email(
        "b@example.com", booking_id=BOOKING, quantity=1, amount_minor=100, currency="USD"
    )
    assert mail.kind == "booking_confirmed" and mail.key == BOOKING
    assert "1 ticket(s) confirmed for 1.00 USD" in mail.text
    assert "tickets" not in mail.text.lower().replace("ticket(s)", "")


def test_an_email_survives_its_envelope() -> None:
    from booking.messaging import Envelope
    from booking.notifications import EMAIL_SEND

    mail = one_of_each()[0]
    envelope = Envelope.new(EMAIL_SEND, mail.key, mail.payload(), datetime.now(UTC))
    assert Email.of_envelope(Envelope.decode(envelope.encode())) == mail
    # What the saga wrote before kinds existed still reads.
    old = Envelope.new(
        EMAIL_SEND, "k", {"to": "a@b.c", "subject": "s", "text": "t"}, datetime.now(UTC)
    )
    assert Email.of_envelope(old).kind == "message"
    with pytest.raises(ValueError, match="to"):
        Email.of_envelope(
            Envelope.new(EMAIL_SEND, "k", {"subject": "s", "text": "t"}, datetime.now(UTC))
        )


def test_the_message_carries_both_parts_and_a_message_id_from_the_notification() -> None:
    mail = one_of_each()[0]
    message = build_message(mail, notification_id="n-1", sender="Rush <r@example.com>")
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == message_id("n-1") == "<n-1@booking-rush>"
    assert message["X-Booking-Rush-Kind"] == "booking_confirmed"
    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


@pytest.mark.parametrize("to", ["", "not an address", "nobody", "a b@example.com"])
def test_a_recipient_that_is_no_address_is_refused_before_any_smtp(to: str) -> None:
    mail = Email(to=to, subject="s", text="t", key="k")
    with pytest.raises(SmtpPermanentError, match="bad address"):
        build_message(mail, notification_id="n", sender="r@example.com")


def test_smtp_url_plain_starttls_tls_and_credentials() -> None:
    plain = SmtpConfig.from_url("smtp://127.0.0.1:1025")
    assert (plain.host, plain.port, plain.tls, plain.starttls) == ("127.0.0.1", 1025, False, None)
    assert (plain.username, plain.password) == ("", "")

    starttls = SmtpConfig.from_url("smtp://mailer%40corp:p%3Ass@mail.example?starttls=1")
    assert (starttls.port, starttls.starttls, starttls.tls) == (25, True, False)
    assert (starttls.username, starttls.password) == ("mailer@corp", "p:ss")
    assert "p:ss" not in starttls.describe() and "starttls" in starttls.describe()

    never = SmtpConfig.from_url("smtp://mail.example:587?starttls=0&timeout=2.5")
    assert (never.port, never.starttls, never.timeout_s) == (587, False, 2.5)

    tls = SmtpConfig.from_url("smtps://u:p@mail.example?verify=0")
    assert (tls.port, tls.tls, tls.starttls, tls.verify) == (465, True, False, False)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example", "smtp:// or smtps://"),
        ("smtp://", "no host"),
        ("smtp://mail.example:notaport", "bad port"),
        ("smtp://mail.example?tls=yes", "unknown option"),
        ("smtp://mail.example?starttls=maybe", "starttls"),
        ("smtps://mail.example?starttls=1", "TLS already"),
    ],
)
def test_a_bad_smtp_url_is_refused_with_what_is_wrong(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        SmtpConfig.from_url(url)


def test_smtp_settings_come_from_the_environment() -> None:
    config = SmtpConfig.from_env(
        Env({"SMTP_URL": "smtp://relay.example:2525", "SMTP_FROM": "Tickets <t@example.com>"})
    )
    assert (config.host, config.port, config.sender) == (
        "relay.example",
        2525,
        "Tickets <t@example.com>",
    )
    default = SmtpConfig.from_env(Env({}))
    assert (default.host, default.port) == ("127.0.0.1", 1025)
