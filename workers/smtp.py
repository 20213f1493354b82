"""SMTP for the notifier: the settings (`SMTP_URL`, `SMTP_FROM`), the MIME message of an email,
and a sender that keeps one connection open and says whether a failure is worth a retry.

`SMTP_URL`: `smtp://[user:password@]host[:port][?starttls=1]` (plain, or STARTTLS when asked:
`starttls=1` requires it, `starttls=0` never tries, unset upgrades when the server offers it)
or `smtps://...` (TLS from the first byte, port 465 by default). `?verify=0` accepts any server
certificate (a test server's self-signed one); `?timeout=S` bounds each SMTP exchange.
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from booking.notifications import Email
from common.settings import Env

DEFAULT_SMTP_URL = "smtp://127.0.0.1:1025"
DEFAULT_SMTP_FROM = "booking-rush <no-reply@booking-rush.local>"
MESSAGE_ID_DOMAIN = "booking-rush"
DEFAULT_TIMEOUT_S = 10.0  # a try (and so a tick) stays well inside WORKER_LIVENESS_S


class SmtpTransientError(Exception):
    """Worth another try later: no connection, a timeout, a 4xx answer."""


class SmtpPermanentError(Exception):
    """Will never succeed as it is: a 5xx answer, an address that is not one."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 1025
    username: str = ""
    password: str = ""
    tls: bool = False  # smtps://: TLS from the start
    starttls: bool | None = None  # True: required; False: never; None: when offered
    verify: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    sender: str = DEFAULT_SMTP_FROM

    @classmethod
    def from_url(cls, url: str, *, sender: str = DEFAULT_SMTP_FROM) -> SmtpConfig:
        """ValueError names what is wrong with the URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {url!r}")
        if not parts.hostname:
            raise ValueError(f"SMTP_URL names no host: {url!r}")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "verify", "timeout"}
        if unknown:
            raise ValueError(f"SMTP_URL: unknown option(s) {', '.join(sorted(unknown))}")
        env = Env({f"SMTP_URL {key}": value for key, value in query.items()})
        tls = parts.scheme == "smtps"
        starttls: bool | None = None
        if "starttls" in query:
            starttls = env.flag("SMTP_URL starttls")
            if tls and starttls:
                raise ValueError("SMTP_URL: smtps:// is TLS already; starttls=1 contradicts it")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"SMTP_URL has a bad port: {url!r}") from None
        return cls(
            host=parts.hostname,
            port=port or (465 if tls else 25),
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            tls=tls,
            starttls=False if tls else starttls,
            verify=env.flag("SMTP_URL verify", True),
            timeout_s=env.number("SMTP_URL timeout", DEFAULT_TIMEOUT_S, minimum=0.1),
            sender=sender,
        )

    @classmethod
    def from_env(cls, env: Env) -> SmtpConfig:
        return cls.from_url(
            env.text("SMTP_URL", DEFAULT_SMTP_URL),
            sender=env.text("SMTP_FROM", DEFAULT_SMTP_FROM),
        )

    def describe(self) -> str:
        """For logs: no password."""
        who = f"{self.username}@" if self.username else ""
        mode = (
            "tls"
            if self.tls
            else {True: "starttls", False: "plain", None: "starttls?"}[self.starttls]
        )
        return f"{who}{self.host}:{self.port} ({mode})"


def message_id(notification_id: str) -> str:
    """The Message-ID of a notification's email: the same for every (re)send of it."""
    return f"<{notification_id}@{MESSAGE_ID_DOMAIN}>"


def build_message(
    mail: Email, *, notification_id: str, sender: str, headers: Mapping[str, str] | None = None
) -> EmailMessage:
    """Text (and HTML, when the email has it) as multipart/alternative. SmtpPermanentError for
    a recipient that is not an address."""
    _, address = email.utils.parseaddr(mail.to)
    if not address or "@" not in address or any(c.isspace() for c in address):
        raise SmtpPermanentError(f"bad address {mail.to!r}")
    message = EmailMessage()
    message["Message-ID"] = message_id(notification_id)
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["X-Booking-Rush-Kind"] = mail.kind
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message


class SmtpSender:
    """One SMTP connection, opened on first use and again after any failure."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: aiosmtplib.SMTP | None = None

    def _new_client(self) -> aiosmtplib.SMTP:
        config = self.config
        context = None
        if not config.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password or None,
            use_tls=config.tls,
            start_tls=config.starttls,
            validate_certs=config.verify,
            tls_context=context,
            timeout=config.timeout_s,
        )

    async def send(self, message: EmailMessage) -> None:
        """Raises SmtpTransientError or SmtpPermanentError; returns once the server took it."""
        reused = self._client is not None and self._client.is_connected
        try:
            await self._send(message)
        except aiosmtplib.SMTPServerDisconnected:
            await self.aclose()
            if not reused:
                raise SmtpTransientError("the server closed the connection") from None
            # The server dropped our idle connection: one try on a fresh one, now.
            try:
                await self._send(message)
            except Exception as exc:
                await self.aclose()
                raise classify(exc) from exc
        except Exception as exc:
            await self.aclose()
            raise classify(exc) from exc

    async def _send(self, message: EmailMessage) -> None:
        if self._client is None or not self._client.is_connected:
            self._client = self._new_client()
            await self._client.connect()
        await self._client.send_message(message)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except Exception:
            client.close()


def classify(exc: BaseException) -> Exception:
    """The sender's verdict on an SMTP failure."""
    if isinstance(exc, SmtpTransientError | SmtpPermanentError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        if codes and all(400 <= code < 500 for code in codes):
            return SmtpTransientError(f"recipient deferred: {detail}")
        return SmtpPermanentError(f"recipient refused: {detail}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
        if 400 <= exc.code < 500 or exc.code < 0:
            return SmtpTransientError(text)
        return SmtpPermanentError(text)
    unsupported = isinstance(exc, aiosmtplib.SMTPException) and "not supported" in str(exc)
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or unsupported:
        # STARTTLS (or AUTH) asked for and not offered: a configuration error, not a blip.
        return SmtpPermanentError(f"server does not support what SMTP_URL asks: {exc}")
    if isinstance(exc, OSError | TimeoutError | aiosmtplib.SMTPException):
        return SmtpTransientError(f"{type(exc).__name__}: {exc}")
    return SmtpPermanentError(f"{type(exc).__name__}: {exc}")
