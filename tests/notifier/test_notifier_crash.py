"""A real `python -m workers notifier` process SIGKILLed in the middle of a batch and started
again: every notification reaches the SMTP server, each exactly once except the one whose 250
the killed process never got; that one is sent again with the same Message-ID, and recorded as
a try whose outcome was lost (the crash window the notifier documents)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from booking.notifications import Email
from tests.notifier.conftest import MailRig
from tests.polling import wait_for

pytestmark = pytest.mark.e2e  # it starts processes of its own

ROOT = Path(__file__).resolve().parents[2]
BATCH = 6
HELD = 3  # the server stores this message, then sits on its 250 until the process is killed


@contextlib.contextmanager
def notifier_process(rig: MailRig, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    settings = rig.settings
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_CLUSTER": "0",
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "KAFKA_NAMESPACE": rig.namespace,
        "KAFKA_SESSION_TIMEOUT_MS": "1000",
        "SMTP_URL": f"smtp://127.0.0.1:{rig.port}?timeout=30",
        "NOTIFIER_BACKOFF_S": "0.1",
    }
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers", "notifier"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


async def test_killed_mid_batch_and_restarted_every_email_arrives(
    mail_rig: MailRig, tmp_path: Path
) -> None:
    drop = mail_rig.drop
    drop.plan = ["250"] * (HELD - 1) + ["hold"]
    drop.hold_s = 60.0
    emails = [
        Email(to=f"buyer{i}@example.com", subject=f"mail {i}", text="t", key=f"k{i % 2}")
        for i in range(BATCH)
    ]
    ids = await mail_rig.publish(emails)
    log_path = tmp_path / "notifier.log"

    with notifier_process(mail_rig, log_path) as first:
        await wait_for(lambda: _stored(mail_rig, HELD), within=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    drop.release.set()
    held = [m["Message-ID"] for m in drop.messages][HELD - 1]
    assert await mail_rig.processed() < BATCH, "the kill came after the batch was done"

    with notifier_process(mail_rig, log_path):
        await wait_for(lambda: _all_processed(mail_rig), within=60)

    counts = {
        notification_id: drop.count(f"<{notification_id}@booking-rush>") for notification_id in ids
    }
    assert set(counts.values()) <= {1, 2}, counts
    resent = [i for i, count in counts.items() if count == 2]
    assert [f"<{i}@booking-rush>" for i in resent] == [held], counts
    row = await mail_rig.delivery(resent[0])
    assert (row["state"], row["attempts"]) == ("sent", 2)
    assert "may have been sent already" in log_path.read_text()
    for notification_id in ids:
        if notification_id not in resent:
            assert (await mail_rig.delivery(notification_id))["attempts"] == 1


async def _stored(rig: MailRig, count: int) -> bool:
    return len(rig.drop.messages) >= count


async def _all_processed(rig: MailRig) -> bool:
    return await rig.processed() >= BATCH
