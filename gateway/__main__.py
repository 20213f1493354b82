"""`python -m gateway serve` runs the gateway; `python -m gateway check` probes a running one."""

from __future__ import annotations

import argparse
import sys
import urllib.request
from typing import Any

import uvicorn

from common.http_server import GRACEFUL_SHUTDOWN_S, HTTP_PROTOCOL, KEEP_ALIVE_S
from common.limits import raise_open_files_limit
from common.logs import logging_config
from common.redis_client import refuse_mismatch_at_start
from common.tracing import configure_tracing
from gateway.app import create_app
from gateway.settings import GatewaySettings


def serve(settings: GatewaySettings) -> None:
    refuse_mismatch_at_start(settings.redis_url, cluster=settings.redis_cluster)
    raise_open_files_limit()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": HTTP_PROTOCOL,  # httptools, one send per loop turn (common/http_server.py)
        "ws": "websockets-sansio",  # the live feed's WebSocket proxy (gateway/ws.py)
        "lifespan": "on",
        "access_log": False,
        "log_config": logging_config("gateway", settings.log_level),
        "server_header": False,
        # uvicorn would otherwise take the client address from X-Forwarded-For whenever the peer
        # is 127.0.0.1; the gateway decides itself whom to trust (TRUSTED_PROXY_HOPS).
        "proxy_headers": False,
        # Open SSE streams and WebSockets must not keep a stopping gateway alive.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        # Clients and load balancers keep idle connections up to 60 s; we must outlast them.
        "timeout_keep_alive": KEEP_ALIVE_S,
    }
    if settings.workers > 1:
        # Several processes need an import string; each worker rebuilds settings from env.
        uvicorn.run(
            "gateway.app:create_app_from_env", factory=True, workers=settings.workers, **options
        )
    else:
        configure_tracing("gateway")
        uvicorn.run(create_app(settings), **options)


def check(settings: GatewaySettings) -> int:
    url = f"http://{settings.host}:{settings.port}/api/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"gateway not healthy at {url}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("command", choices=["serve", "check"])
    args = parser.parse_args(argv)
    settings = GatewaySettings.from_env()
    if args.command == "check":
        return check(settings)
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
