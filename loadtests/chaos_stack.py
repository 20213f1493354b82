"""The stack of one chaos scenario (`loadtests/chaos.py`): its environment, its start, readiness,
the fault injected through its hooks and what its stop reported."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from loadtests.chaos_scenarios import STOP_LIMIT_S, ChaosConfig, Fault


def chaos_env(config: ChaosConfig, scenario: str) -> dict[str, str]:
    """The chaos stack's environment: the caller's, without server addresses, short timeouts."""
    from common.tokens import generate_secret

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "KAFKA_BOOTSTRAP", "BOOKING_URL"}
    }
    env.update(
        {
            "HOLD_TTL_S": str(config.hold_ttl_s),
            "SAGA_TIMEOUT_S": str(config.saga_timeout_s),
            "RATE_LIMIT_PER_IP": "100000",
            "RATE_LIMIT_PER_USER": "1000",
            "RATE_LIMIT_AUTH_PER_IP": "1000",
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            "KAFKA_NAMESPACE": f"chaos{uuid.uuid4().hex[:8]}",
            "MOCK_PAYMENT_DELAY_S": "0.2",
            "BOOKING_REPLICAS": env.get("BOOKING_REPLICAS") or "2",
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": generate_secret(),
            "INTERNAL_SECRET": generate_secret(),
            "ADMIN_EMAIL": f"admin@{scenario}.chaos.local",
            "ADMIN_PASSWORD": f"{scenario}-chaos-admin",
        }
    )
    return env


def build_stack(run_dir: Path, env: dict[str, str], console: Any) -> Any:
    """A `Stack` that owns its servers (the hooks may kill them), on free loopback ports."""
    from stack.processes import free_port, free_port_block
    from stack.specs import StackSettings
    from stack.supervisor import Stack

    settings = StackSettings.from_env(env)
    fields = {
        "gateway_port": free_port(),
        "booking_port": free_port_block(8),
        "metrics_base_port": free_port_block(16),
        "admin_email": env["ADMIN_EMAIL"],
        "admin_password": env["ADMIN_PASSWORD"],
        "database_name": "booking_rush_chaos",
    }
    settings = dataclasses.replace(settings, **fields)
    kwargs: dict[str, Any] = {}
    if "own_servers" in inspect.signature(Stack.__init__).parameters:
        kwargs["own_servers"] = True
    else:  # an older Stack: make the configured servers unreachable so it starts its own
        env.update(
            {
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/booking_rush_chaos",
                "KAFKA_BOOTSTRAP": "127.0.0.1:1",
            }
        )
    return Stack(run_dir, env, settings=settings, console=console, **kwargs)


def ready_urls(stack: Any) -> list[str]:
    """`/api/v1/ready` of the gateway and of every booking process the stack runs."""
    urls = []
    for spec in stack.specs:
        health = getattr(spec, "health_url", None)
        if health and health.endswith("/health"):
            urls.append(health.removesuffix("/health") + "/ready")
    return urls


async def all_ready(http: httpx.AsyncClient, urls: list[str]) -> bool:
    async def one(url: str) -> bool:
        try:
            return (await http.get(url, timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    return all(await asyncio.gather(*(one(url) for url in urls)))


async def time_to_ready(urls: list[str], since: float, limit_s: float = 60.0) -> float | None:
    """Seconds from `since` (monotonic) until every ready URL answers 200; None past limit_s."""
    async with httpx.AsyncClient() as http:
        while time.monotonic() - since < limit_s:
            if await all_ready(http, urls):
                return round(time.monotonic() - since, 2)
            await asyncio.sleep(0.2)
    return None


def _hook(stack: Any, name: str) -> Callable[..., Any]:
    hook = getattr(stack, name, None)
    if hook is None:
        raise RuntimeError(f"the stack has no `{name}` hook (stack supervision not there yet)")
    return hook  # type: ignore[no-any-return]


def inject(stack: Any, fault: Fault) -> list[str]:
    """Inject the fault now; the copies a rebalance started (to stop later)."""
    if fault.kind == "process":
        if hasattr(stack, "kill_process"):
            stack.kill_process(fault.target, signal.SIGKILL)
        else:
            pid = stack.pids()[fault.target]
            os.killpg(pid, signal.SIGKILL)
        return []
    if fault.kind == "server":
        if hasattr(stack, "kill_server"):
            stack.kill_server(fault.target, wipe=fault.wipe)
        else:  # an older Stack: kill the server it recorded; nothing will restart it
            from stack.servers.base import ServerRecord

            record = ServerRecord.read(Path(stack.run_dir) / fault.target)
            if record is None:
                raise RuntimeError(f"no {fault.target} server recorded and no kill_server hook")
            os.kill(record.pid, signal.SIGKILL)
        return []
    start_copy = _hook(stack, "start_copy")
    return [str(start_copy(name)) for name in fault.copies]


def stop_figures(stack: Any) -> tuple[dict[str, float], list[str], str | None]:
    """({name: seconds to exit}, names that needed SIGKILL or took > 10 s, problem reading it).

    `stack.stop_report[name]` is read as a mapping or an object with the seconds from SIGTERM
    to exit and whether SIGKILL was needed (names tried: seconds/elapsed_s/...,
    sigkill/killed/needed_sigkill/...)."""
    report = getattr(stack, "stop_report", None)
    if report is None:
        return {}, [], "the stack has no stop_report (cannot tell who ignored SIGTERM)"
    seconds: dict[str, float] = {}
    stubborn: list[str] = []
    for name, entry in dict(report).items():
        values = entry if isinstance(entry, Mapping) else getattr(entry, "__dict__", {})
        if isinstance(entry, tuple | list) and len(entry) >= 2:
            values = {"seconds": entry[0], "sigkill": entry[1]}
        took = next(
            (values[k] for k in ("seconds", "elapsed_s", "seconds_to_exit", "took_s", "elapsed")
             if k in values),
            None,
        )  # fmt: skip
        killed = next(
            (values[k] for k in ("sigkill", "killed", "needed_sigkill", "sigkilled", "kill")
             if k in values),
            False,
        )  # fmt: skip
        if took is not None:
            seconds[name] = round(float(took), 2)
        if killed or (took is not None and float(took) > STOP_LIMIT_S):
            stubborn.append(name)
    return seconds, stubborn, None
