"""`make run` in the foreground: the settings line, the banner, signals, the exit code."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from stack.managed import StackError
from stack.supervisor import Stack


def run_stack(run_dir: Path, env: Mapping[str, str], console: TextIO | None = None) -> int:
    """The `make run` entrypoint: start everything, print the banner, supervise until a signal."""
    return supervise(Stack(run_dir, env, console=console), env)


def supervise(stack: Stack, env: Mapping[str, str]) -> int:
    """Run `stack` in the foreground until SIGINT/SIGTERM (exit 0) or a failed start (exit 1);
    crashing processes are restarted with backoff, never a reason to stop everything."""
    interrupted = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        interrupted.set()
        stack.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    print_settings(stack, env)
    code = 0
    try:
        stack.start()
        print_banner(stack)
        code = stack.wait()
    except StackError as error:
        if not interrupted.is_set():
            stack.say(f"error: {error}")
            code = 1
    except Exception as error:  # e.g. infra could not start: report it, clean up, exit 1
        stack.say(f"error: {type(error).__name__}: {error}")
        code = 1
    finally:
        stack.say("stopping")
        started = time.monotonic()
        stack.stop()
        stack.output.console.line("stack", f"stopped in {time.monotonic() - started:.1f} s")
    return code


def print_settings(stack: Stack, env: Mapping[str, str]) -> None:
    s = stack.settings
    stack.say(
        f"settings: GATEWAY_PORT={s.gateway_port} BOOKING_PORT={s.booking_port} "
        f"BOOKING_REPLICAS={s.booking_replicas} GATEWAY_REPLICAS={s.gateway_replicas} "
        f"WORKER_COPIES={s.worker_copies} "
        f"HOLD_TTL_S={env.get('HOLD_TTL_S') or '600 (default)'} "
        f"RATE_LIMIT_PER_IP={env.get('RATE_LIMIT_PER_IP') or '(service default)'} "
        f"RATE_LIMIT_PER_USER={env.get('RATE_LIMIT_PER_USER') or '(service default)'}"
    )
    stack.say(f"admin account: {s.admin_email} / {s.admin_password}")


def print_banner(stack: Stack) -> None:
    """Every gateway and booking process with its health URL, every worker copy's metrics."""
    s = stack.settings
    lines = ["booking-rush is up"]
    for spec in stack.specs:
        if spec.health_url:
            base = spec.health_url.removesuffix("/health")
            lines.append(f"  {spec.name:<9} {base}   (health: {spec.health_url})")
    for spec in stack.specs:
        port = spec.env.get("WORKER_METRICS_PORT")
        if port:
            lines.append(f"  metrics   {spec.name}: http://127.0.0.1:{port}/metrics")
    lines += [
        f"  admin     {s.admin_email} / {s.admin_password}",
        f"  logs      {stack.logs_dir}/<name>.log",
        f"  mail      {stack.mail.describe()}",
        "  Ctrl-C to stop",
    ]
    for line in lines:
        stack.say(line)
