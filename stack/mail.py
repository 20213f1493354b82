"""Where the stack's email goes: SMTP_URL when it is set; otherwise a local SMTP sink
(stack/servers/smtp.py) that `make run` starts as one more supervised process, on port 1025
unless that is taken, storing every message under `<run_dir>/mail/`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stack.infra import redact
from stack.processes import free_port, port_is_free
from stack.specs import ProcessSpec

MAIL_SINK = "smtp-sink"
DEFAULT_MAIL_SINK_PORT = 1025


@dataclass(frozen=True)
class Mail:
    url: str  # the SMTP_URL every process gets ("" leaves the notifier its default)
    sink: ProcessSpec | None = None  # the local sink to start, when there is one
    mail_dir: Path | None = None

    @property
    def specs(self) -> list[ProcessSpec]:
        return [self.sink] if self.sink is not None else []

    @property
    def env(self) -> dict[str, str]:
        return {"SMTP_URL": self.url} if self.url else {}

    def describe(self) -> str:
        if self.sink is not None:
            return f"{self.mail_dir}/<Message-ID>.eml (local SMTP sink at {self.url})"
        return f"sent to SMTP_URL={redact(self.url)}" if self.url else "no SMTP_URL"


def mail_for(run_dir: Path, env: Mapping[str, str], *, start_sink: bool) -> Mail:
    """SMTP_URL as configured, else (with `start_sink`) a local sink on a free port."""
    configured = (env.get("SMTP_URL") or "").strip()
    if configured or not start_sink:
        return Mail(configured)
    port = DEFAULT_MAIL_SINK_PORT if port_is_free(DEFAULT_MAIL_SINK_PORT) else free_port()
    mail_dir = run_dir / "mail"
    argv = [sys.executable, "-m", "stack.servers.smtp", "--port", str(port)]
    sink = ProcessSpec(MAIL_SINK, [*argv, "--mail-dir", str(mail_dir)], dict(env))
    return Mail(f"smtp://127.0.0.1:{port}", sink, mail_dir)
