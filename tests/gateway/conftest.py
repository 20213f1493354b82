"""Gateway tests run the real gateway and a stand-in booking upstream under uvicorn on loopback.

Each server runs in its own thread with its own event loop, so the test's client, the gateway and
the upstream talk only over real sockets. Rate-limit keys get a fresh prefix per test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from common.tokens import TokenKeys, issue_access_token
from gateway.app import create_app
from gateway.settings import Budget, GatewaySettings

HS_SECRET = "gateway-tests-secret-" + "x" * 32
SSE_CHUNKS = 3
SSE_GAP_S = 0.4
ROOMY = Budget(rate=10_000, burst=20_000)


class ServerThread:
    """A uvicorn server on a free 127.0.0.1 port, in a thread with its own event loop."""

    def __init__(self, app: Any, *, ws: str = "none") -> None:
        self.port = 0
        self.url = ""
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,  # the kernel picks; read back once started
            loop="asyncio",
            http="httptools",
            ws=ws,  # the gateway serves WebSockets with "websockets-sansio"
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=1,
            proxy_headers=False,  # as `python -m gateway serve`: X-Forwarded-For is ours to judge
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the stand-in booking service -------------------------------------------------------------


async def _echo(request: Request) -> Response:
    body = await request.body()
    status = int(request.query_params.get("status", "200"))
    answer = JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "body": body.decode(),
            "upstream": request.app.state.name,
        },
        status_code=status,
    )
    if request.query_params.get("cookies"):
        answer.raw_headers += [(b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/")]
    return answer


async def _sse(request: Request) -> Response:
    async def events() -> AsyncIterator[bytes]:
        for index in range(SSE_CHUNKS):
            if index:
                await asyncio.sleep(SSE_GAP_S)
            data = orjson.dumps({"i": index, "sent": time.time()})
            yield b"event: tick\ndata: " + data + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def _slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "3")))
    return JSONResponse({"late": True})


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def upstream_app(name: str = "booking-1") -> Starlette:
    app = Starlette(
        routes=[
            Route("/api/v1/health", _health),
            Route("/api/v1/events/{id}/availability/stream", _sse),
            Route("/api/v1/slow", _slow),
            Route(
                "/api/v1/{path:path}",
                _echo,
                methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            ),
        ]
    )
    app.state.name = name
    return app


@pytest.fixture(scope="session")
def upstream() -> Iterator[ServerThread]:
    server = ServerThread(upstream_app()).start()
    yield server
    server.stop()


# --- tokens -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hs_keys() -> TokenKeys:
    return TokenKeys.from_env({"JWT_SECRET": HS_SECRET}, need_signing=True)


@pytest.fixture(scope="session")
def token_for(hs_keys: TokenKeys) -> Callable[..., str]:
    def make(user_id: str = "user-1", role: str = "customer", ttl_s: int = 600) -> str:
        return issue_access_token(
            hs_keys, user_id=user_id, role=role, ttl_s=ttl_s, now=datetime.now(UTC)
        )

    return make


# --- the gateway under test -------------------------------------------------------------------


@pytest.fixture
def gateway_settings(
    hs_keys: TokenKeys, upstream: ServerThread, redis_url: str, unique: str
) -> GatewaySettings:
    return GatewaySettings(
        token_keys=TokenKeys("HS256", verify_key=HS_SECRET),
        upstreams=(upstream.url,),
        redis_url=redis_url,
        per_ip=ROOMY,
        per_user=ROOMY,
        auth_per_ip=ROOMY,
        rate_limit_prefix=f"test:gw:{unique}:",
        upstream_timeout_s=2.0,
    )


@pytest.fixture
def start_gateway(gateway_settings: GatewaySettings) -> Iterator[Callable[..., Any]]:
    """Start a gateway with the test defaults changed by keyword; yields an async client factory."""
    servers: list[ServerThread] = []

    @asynccontextmanager
    async def start(**changes: Any) -> AsyncIterator[httpx.AsyncClient]:
        server = ServerThread(create_app(replace(gateway_settings, **changes)))
        await asyncio.to_thread(server.start)
        servers.append(server)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            yield client

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with start_gateway() as client:
        yield client


def seen_headers(answer: httpx.Response) -> dict[str, list[str]]:
    """The headers the upstream received, by lower-case name."""
    seen: dict[str, list[str]] = {}
    for name, value in answer.json()["headers"]:
        seen.setdefault(name, []).append(value)
    return seen
