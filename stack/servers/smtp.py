"""The local SMTP sink of `make run`: a real SMTP server (aiosmtpd) on loopback that stores each
message it accepts as an `.eml` file under the mail directory (`.run/mail/` by default).

A file is named after the message's Message-ID (`<id@booking-rush>` -> `id@booking-rush.eml`);
a second delivery of the same Message-ID is kept beside the first as `id@booking-rush~2.eml`,
so a duplicate is visible, never silently merged. A message without a Message-ID is named by
the time it arrived. Files are written to a temporary name and renamed, so a reader never sees
half a message.

`python -m stack.servers.smtp --port 1025 --mail-dir .run/mail` runs it on its own.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import click
from aiosmtpd.smtp import SMTP, Envelope, Session

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def file_stem(raw: bytes) -> str:
    """The file name (without `.eml`) for a message: its Message-ID made safe for a path."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    message_id = str(headers.get("Message-ID") or "").strip().strip("<>")
    if not message_id:
        return f"no-id-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    return _UNSAFE.sub("_", message_id)[:200]


class MailDrop:
    """aiosmtpd handler: writes every accepted message to `mail_dir`; `delivered` lists the
    Message-ID stems in arrival order (for an in-process server in tests)."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = Path(mail_dir)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.delivered: list[str] = []

    def store(self, raw: bytes) -> Path:
        stem = file_stem(raw)
        path = self.mail_dir / f"{stem}.eml"
        copy = 1
        while path.exists():
            copy += 1
            path = self.mail_dir / f"{stem}~{copy}.eml"
        partial = self.mail_dir / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        partial.write_bytes(raw)
        partial.replace(path)
        self.delivered.append(stem)
        return path

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        self.store(raw)
        return "250 OK stored"


def create_server(handler: Any, host: str, port: int) -> Any:
    """The coroutine that starts serving SMTP on (host, port) with `handler`."""
    loop = asyncio.get_running_loop()
    return loop.create_server(lambda: SMTP(handler, hostname="booking-rush-sink"), host, port)


async def _serve(host: str, port: int, mail_dir: Path) -> None:
    server = await create_server(MailDrop(mail_dir), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"smtp sink on {host}:{port}: each message lands in {mail_dir}/", flush=True)
    async with server:
        await stop.wait()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=1025, show_default=True, type=int)
@click.option("--mail-dir", default=".run/mail", show_default=True, type=click.Path())
def main(host: str, port: int, mail_dir: str) -> None:
    """A local SMTP sink: every message it accepts is stored as an .eml file."""
    asyncio.run(_serve(host, port, Path(mail_dir).resolve()))


if __name__ == "__main__":
    main()
