"""Real SMTP servers for the notifier's tests: aiosmtpd on 127.0.0.1 in the test's event loop,
storing what it accepts like the `make run` sink, and answering from a plan when told to (a
451 or a 550 instead of the 250, or a 250 that comes late)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from stack.servers.smtp import MailDrop, create_server


class PlannedDrop(MailDrop):
    """Answers DATA from the recipient's plan in `plans`, else from `plan`, while it lasts (an
    answer starting with 4 or 5 refuses the message unstored; "hold" stores it and answers 250
    only after `hold_s` or once `release` is set), then 250."""

    def __init__(self, mail_dir: Path, plan: list[str] | None = None, hold_s: float = 5.0) -> None:
        super().__init__(mail_dir)
        self.plan = list(plan or ())
        self.plans: dict[str, list[str]] = {}
        self.hold_s = hold_s
        self.refused = 0
        self.messages: list[EmailMessage] = []
        self.release = asyncio.Event()  # ends a "hold" early

    def store(self, raw: bytes) -> Path:
        path = super().store(raw)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return path

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        own = self.plans.get(envelope.rcpt_tos[0] if envelope.rcpt_tos else "")
        if own:
            answer = own.pop(0)
        else:
            answer = self.plan.pop(0) if self.plan else "250"
        if answer[:1] in ("4", "5"):
            self.refused += 1
            return answer
        stored = await super().handle_DATA(server, session, envelope)
        if answer == "hold":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.hold_s)
        return stored

    def count(self, message_id: str) -> int:
        return sum(1 for m in self.messages if m["Message-ID"] == message_id)


@contextlib.asynccontextmanager
async def smtp_server(handler: Any) -> AsyncIterator[int]:
    """Serves SMTP with `handler` on a free loopback port (yielded) for the block."""
    server = await create_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
