"""An ASGI app served by a real uvicorn on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from stack.processes import free_port


@asynccontextmanager
async def uvicorn_serving(app: Any, *, within_s: float = 20, **config: Any) -> AsyncIterator[int]:
    """Yields the port once uvicorn listens; stops it (within `within_s`) afterwards. `config`
    goes to uvicorn.Config (protocol, lifespan, logging)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(within_s):
            while not server.started:
                if task.done():
                    task.result()  # it could not start: say why
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, within_s)
