"""The local SMTP sink of `make run`: the launcher starts it (and points SMTP_URL at it) only
when SMTP_URL is unset, and the real sink process stores every message it is sent over SMTP as
`<Message-ID>.eml`, a second delivery of the same Message-ID beside the first."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest

from booking.notifications import Email
from stack.mail import DEFAULT_MAIL_SINK_PORT, mail_for
from stack.processes import free_port
from stack.supervisor import Stack
from tests.polling import wait_for
from workers.smtp import SmtpConfig, SmtpSender, build_message

ROOT = Path(__file__).resolve().parents[2]


def test_a_configured_smtp_url_is_used_as_it_is(tmp_path: Path) -> None:
    mail = mail_for(tmp_path, {"SMTP_URL": "smtp://relay.example:25"}, start_sink=True)
    assert (mail.sink, mail.env) == (None, {"SMTP_URL": "smtp://relay.example:25"})
    assert "relay.example" in mail.describe()


def test_without_smtp_url_the_launcher_starts_a_sink_and_points_smtp_url_at_it(
    tmp_path: Path,
) -> None:
    mail = mail_for(tmp_path, {}, start_sink=True)
    assert mail.sink is not None
    port = int(mail.url.rsplit(":", 1)[1])
    assert mail.env == {"SMTP_URL": f"smtp://127.0.0.1:{port}"}
    assert port == DEFAULT_MAIL_SINK_PORT or port > 0
    assert mail.sink.argv[1:] == [
        "-m",
        "stack.servers.smtp",
        "--port",
        str(port),
        "--mail-dir",
        str(tmp_path / "mail"),
    ]
    assert str(tmp_path / "mail") in mail.describe()
    # Stand-in processes (given specs) need no mail.
    assert mail_for(tmp_path, {}, start_sink=False).specs == []
    assert Stack(tmp_path, {}, specs=[]).mail.sink is None
    assert Stack(tmp_path, {}).mail.sink is not None


@contextlib.contextmanager
def sink_process(port: int, mail_dir: Path) -> Iterator[None]:
    argv = [sys.executable, "-m", "stack.servers.smtp", "--port", str(port)]
    process = subprocess.Popen(
        [*argv, "--mail-dir", str(mail_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.e2e
async def test_the_sink_process_stores_each_message_under_its_message_id(tmp_path: Path) -> None:
    port = free_port()
    mail_dir = tmp_path / "mail"
    sender = SmtpSender(SmtpConfig(port=port, timeout_s=5))
    with sink_process(port, mail_dir):
        try:
            await wait_for(lambda: _answers(port), within=20, every=0.1)
            first = Email(to="a@example.com", subject="one", text="one", key="k", html="<p>1</p>")
            other = Email(to="b@example.com", subject="two", text="body two", key="k")
            for mail, notification_id in ((first, "n-1"), (other, "n-2"), (first, "n-1")):
                message = build_message(mail, notification_id=notification_id, sender="r@x.io")
                await sender.send(message)
        finally:
            await sender.aclose()
    names = sorted(path.name for path in mail_dir.iterdir())
    assert names == ["n-1@booking-rush.eml", "n-1@booking-rush~2.eml", "n-2@booking-rush.eml"]
    assert b"body two" in (mail_dir / "n-2@booking-rush.eml").read_bytes()


async def _answers(port: int) -> bool:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=2)
    try:
        await client.connect()
    except OSError:
        return False
    await client.quit()
    return True
