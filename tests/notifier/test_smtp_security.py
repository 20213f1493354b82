"""SMTP_URL's STARTTLS and credentials against a real aiosmtpd server over a socket: the sender
upgrades to TLS when asked and logs in, a wrong password is a permanent refusal, and a server
that cannot STARTTLS is refused when STARTTLS is required."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from booking.notifications import Email
from stack.servers.smtp import MailDrop
from workers.smtp import (
    SmtpConfig,
    SmtpPermanentError,
    SmtpSender,
    SmtpTransientError,
    build_message,
    classify,
)


def self_signed(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class Recording(MailDrop):
    def __init__(self, mail_dir: Path) -> None:
        super().__init__(mail_dir)
        self.secure: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.secure.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


def only(login: str, password: str) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            login.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # a refusal then answers 535

    return authenticate


@contextlib.asynccontextmanager
async def server(handler: MailDrop, **options: Any) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    listening = await loop.create_server(lambda: SMTP(handler, **options), "127.0.0.1", 0)
    try:
        yield listening.sockets[0].getsockname()[1]
    finally:
        listening.close()


def _mail() -> Any:
    email = Email(to="buyer@example.com", subject="s", text="t", key="k")
    return build_message(email, notification_id="n-1", sender="r@example.com")


async def test_starttls_and_login_as_the_url_says(tmp_path: Path) -> None:
    drop = Recording(tmp_path / "mail")
    options = {
        "tls_context": self_signed(tmp_path),
        "require_starttls": True,
        "authenticator": only("mailer@corp", "s3:cret"),
        "auth_required": True,
    }
    async with server(drop, **options) as port:
        url = f"smtp://mailer%40corp:s3%3Acret@127.0.0.1:{port}?starttls=1&verify=0"
        sender = SmtpSender(SmtpConfig.from_url(url))
        try:
            await sender.send(_mail())
        finally:
            await sender.aclose()
        assert drop.secure == [True]
        wrong = SmtpSender(SmtpConfig.from_url(url.replace("s3%3Acret", "guess")))
        with pytest.raises(SmtpPermanentError, match="535"):
            await wrong.send(_mail())
        plain = SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?starttls=0"))
        with pytest.raises(SmtpPermanentError, match="530"):
            await plain.send(_mail())  # the server insists on STARTTLS first
    assert len(drop.delivered) == 1


async def test_required_starttls_is_not_given_up_for_plain_text(tmp_path: Path) -> None:
    async with server(MailDrop(tmp_path / "mail")) as port:
        sender = SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?starttls=1"))
        with pytest.raises(SmtpPermanentError, match="does not support"):
            await sender.send(_mail())


def test_smtp_failures_are_sorted_into_retry_or_give_up() -> None:
    import aiosmtplib

    assert isinstance(classify(aiosmtplib.SMTPConnectError("refused")), SmtpTransientError)
    assert isinstance(classify(aiosmtplib.SMTPReadTimeoutError("slow")), SmtpTransientError)
    assert isinstance(classify(aiosmtplib.SMTPDataError(451, "later")), SmtpTransientError)
    assert isinstance(classify(aiosmtplib.SMTPDataError(554, "spam")), SmtpPermanentError)
    deferred = aiosmtplib.SMTPRecipientRefused(450, "greylisted", "a@b.c")
    refused = aiosmtplib.SMTPRecipientRefused(550, "no such user", "d@e.f")
    assert isinstance(classify(aiosmtplib.SMTPRecipientsRefused([deferred])), SmtpTransientError)
    both = aiosmtplib.SMTPRecipientsRefused([deferred, refused])
    assert isinstance(classify(both), SmtpPermanentError)
