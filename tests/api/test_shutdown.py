"""`python -m booking serve` exits within 10 s of SIGTERM even with SSE streams open (uvicorn's
timeout_graceful_shutdown, then the lifespan's shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN_S = 10.0


async def wait_healthy(url: str, process: asyncio.subprocess.Process, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            assert process.returncode is None, "the server exited during start-up"
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{url} not healthy within {within_s} s"
            await asyncio.sleep(0.2)


async def open_streams(url: str, count: int) -> tuple[httpx.AsyncClient, list[Any]]:
    """`count` SSE streams, each with its first bytes read (so it is really open)."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(5, read=None))
    streams = []
    for _ in range(count):
        context = client.stream("GET", url, headers={"Accept": "text/event-stream"})
        answer = await context.__aenter__()
        assert answer.status_code == 200, await answer.aread()
        assert answer.headers["content-type"].startswith("text/event-stream")
        chunks = answer.aiter_raw()
        await asyncio.wait_for(chunks.__anext__(), 5)
        streams.append((context, chunks))
    return client, streams


async def start_server_process(module: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "serve",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def sigterm_and_time_exit(process: asyncio.subprocess.Process) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), EXIT_WITHIN_S + 5)
    return time.monotonic() - started


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_booking_exits_within_10s_of_sigterm_with_open_streams(
    service_env: dict[str, str], published_event: Any
) -> None:
    event, _ = await published_event()
    port = free_port()
    env = {
        **os.environ,
        **service_env,
        "BOOKING_HOST": "127.0.0.1",
        "BOOKING_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    process = await start_server_process("booking", env)
    client = None
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(f"{base}/api/v1/health", process)
        stream_url = f"{base}/api/v1/events/{event['event_id']}/availability/stream"
        client, _streams = await open_streams(stream_url, 3)
        elapsed = await sigterm_and_time_exit(process)
        assert process.returncode is not None
        assert elapsed < EXIT_WITHIN_S, f"exited {elapsed:.1f} s after SIGTERM"
    finally:
        await kill(process)
        if client is not None:
            await client.aclose()
