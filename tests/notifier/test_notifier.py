"""The notifier worker on the real broker and PostgreSQL, sending to a real SMTP server over a
socket: every kind arrives once with its Message-ID, a redelivered notification is not sent
again, a 451 is retried, a 550 or attempts running out go to the DLQ with the reason."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from booking.messaging import Envelope
from booking.notifications import Email
from tests.notifier.conftest import MailRig
from tests.notifier.test_emails import one_of_each
from tests.polling import wait_for
from tests.workers.kafka_rig import ticking
from workers.notifier import Notifier


def _notifier(rig: MailRig) -> Any:
    return Notifier.provisioned(rig.settings, poll_timeout_ms=100, retry_interval_s=0.05)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _dead_letters(rig: MailRig, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        f"{rig.topic}.dlq",
        bootstrap_servers=rig.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        found: list[Any] = []

        async def read() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                found.extend(messages)
            return len(found) >= count

        await wait_for(read)
        return found
    finally:
        await consumer.stop()


async def test_every_kind_arrives_once_with_its_parts_and_message_id(mail_rig: MailRig) -> None:
    emails = one_of_each()
    ids = await mail_rig.publish(emails)
    async with ticking(_notifier(mail_rig)):
        await wait_for(lambda: _processed(mail_rig, len(ids)))
    drop = mail_rig.drop
    assert len(drop.messages) == len(emails)
    for notification_id, mail in zip(ids, emails, strict=True):
        assert drop.count(f"<{notification_id}@booking-rush>") == 1
        delivered = next(
            m for m in drop.messages if m["Message-ID"].startswith(f"<{notification_id}")
        )
        assert delivered["Subject"] == mail.subject
        assert delivered["To"] == mail.to
        assert delivered["X-Booking-Rush-Kind"] == mail.kind
        text = delivered.get_body(("plain",))
        html = delivered.get_body(("html",))
        assert text is not None and html is not None
        assert _lines(text.get_content()) == _lines(mail.text)  # CRLF on the wire
        assert _lines(html.get_content()) == _lines(mail.html)
        row = await mail_rig.delivery(notification_id)
        assert (row["state"], row["attempts"]) == ("sent", 1)
    assert (drop.mail_dir / f"{ids[0]}@booking-rush.eml").exists()


async def test_a_redelivered_notification_is_not_sent_again(mail_rig: MailRig) -> None:
    mail = Email(to="b@example.com", subject="once", text="only once", key="k")
    first = await mail_rig.publish([mail])
    async with ticking(_notifier(mail_rig)):
        await wait_for(lambda: _processed(mail_rig, 1))
    # The broker hands the same message out again (another group: all of it from the start).
    duplicates = _metric("booking_rush_emails_total", kind="message", outcome="duplicate")
    worker = Notifier.provisioned(
        mail_rig.settings, group_id=f"again-{mail_rig.namespace}", poll_timeout_ms=100
    )
    async with ticking(worker):
        await wait_for(
            lambda: _value_above(
                "booking_rush_emails_total", duplicates, kind="message", outcome="duplicate"
            )
        )
    assert mail_rig.drop.count(f"<{first[0]}@booking-rush>") == 1


async def test_a_deferring_server_is_tried_again_until_it_takes_the_email(
    mail_rig: MailRig,
) -> None:
    mail_rig.drop.plan = ["451 4.3.0 try later", "421 4.7.0 busy"]  # parked, tried again
    retries = _metric("booking_rush_email_retries_total", kind="refund")
    ids = await mail_rig.publish([one_of_each()[1]])
    async with ticking(_notifier(mail_rig)):
        await wait_for(lambda: _state_is(mail_rig, ids[0], "sent"))
    assert mail_rig.drop.refused == 2
    assert mail_rig.drop.count(f"<{ids[0]}@booking-rush>") == 1
    row = await mail_rig.delivery(ids[0])
    assert (row["state"], row["attempts"]) == ("sent", 3)
    assert _metric("booking_rush_email_retries_total", kind="refund") == retries + 2


async def test_a_refusal_goes_to_the_dlq_with_the_reason_and_the_rest_goes_on(
    mail_rig: MailRig,
) -> None:
    # The first email is refused for good; the second is deferred more often than the notifier
    # tries (3 attempts here, the last two from the retry pass); the third goes through.
    mail_rig.drop.plans = {
        "gone@example.com": ["550 5.1.1 no such mailbox"],
        "slow@example.com": ["451 later"] * 4,
    }
    emails = [
        Email(to="gone@example.com", subject="refused", text="t", key="k", kind="refund"),
        Email(to="slow@example.com", subject="deferred", text="t", key="k", kind="refund"),
        Email(to="fine@example.com", subject="fine", text="t", key="k", kind="refund"),
    ]
    failed = _metric("booking_rush_emails_total", kind="refund", outcome="failed")
    ids = await mail_rig.publish(emails)
    async with ticking(_notifier(mail_rig)):
        dead = await _dead_letters(mail_rig, 2)
        await wait_for(lambda: _state_is(mail_rig, ids[2], "sent"))
    reasons = {dict(message.headers)["dlq-reason"].decode(): message.value for message in dead}
    refused, deferred = (next(r for r in reasons if key in r) for key in ("550", "gave up"))
    assert "UndeliverableError: 550 5.1.1 no such mailbox" in refused
    assert "gave up after 3 attempts: 451 later" in deferred
    assert all(dict(m.headers)["dlq-consumer"] == b"notifier" for m in dead)
    assert sorted(m.value for m in dead) == sorted(reasons.values())
    assert {Envelope.decode(m.value).id for m in dead} == set(ids[:2])
    assert [m["Subject"] for m in mail_rig.drop.messages] == ["fine"]
    states = [(await mail_rig.delivery(i))["state"] for i in ids]
    assert states == ["dead", "dead", "sent"]
    assert _metric("booking_rush_emails_total", kind="refund", outcome="failed") == failed + 2


async def test_an_unreachable_server_is_retried_then_dead_lettered(mail_rig: MailRig) -> None:
    from dataclasses import replace

    from stack.processes import free_port
    from workers.smtp import SmtpConfig

    nowhere = replace(mail_rig.settings, smtp=SmtpConfig(port=free_port(), timeout_s=1.0))
    ids = await mail_rig.publish([Email(to="a@example.com", subject="s", text="t", key="k")])
    async with ticking(Notifier.provisioned(nowhere, poll_timeout_ms=100, retry_interval_s=0.05)):
        dead = await _dead_letters(mail_rig, 1)
    reason = dict(dead[0].headers)["dlq-reason"].decode()
    assert "gave up after 3 attempts" in reason and "Connect" in reason, reason
    row = await mail_rig.delivery(ids[0])
    assert (row["state"], row["attempts"]) == ("dead", 3)


def _lines(text: str) -> list[str]:
    return text.splitlines()


async def _processed(rig: MailRig, count: int) -> bool:
    return await rig.processed() >= count


async def _state_is(rig: MailRig, notification_id: str, state: str) -> bool:
    row = await rig.delivery(notification_id)
    return row is not None and row["state"] == state


async def _value_above(name: str, floor: float, **labels: str) -> bool:
    return _metric(name, **labels) > floor
