"""The gateway's settings: one frozen dataclass, built once from the environment by the entrypoint.

| variable | default | meaning |
|---|---|---|
| `GATEWAY_HOST` | `127.0.0.1` | listen address |
| `GATEWAY_PORT` | `8080` | listen port |
| `GATEWAY_WORKERS` | `1` | uvicorn worker processes (each has its own metrics) |
| `BOOKING_URL` | `http://127.0.0.1:8081` | booking; comma-separated list = round-robin + failover |
| `REDIS_URL` | `redis://127.0.0.1:6379/0` | standalone Redis for the rate-limit buckets |
| `JWT_ALGORITHM` | `HS256` | `HS256` or `RS256`; only this algorithm is accepted |
| `JWT_SECRET` | (HS256: required) | shared HMAC secret, at least 32 characters |
| `JWT_PUBLIC_KEY_FILE` | (RS256: required) | PEM public key (no private key needed) |
| `RATE_LIMIT_PER_IP` | `50` | sustained requests/s per client IP, bad tokens too (burst 2x) |
| `RATE_LIMIT_PER_USER` | `20` | sustained requests/s per user of a valid token (burst 2x) |
| `RATE_LIMIT_AUTH_PER_IP` | `5` | per IP on register/login/refresh (burst 2x) |
| `RATE_LIMIT_PREFIX` | `rl:` | prefix of the rate-limit keys in Redis |
| `TRUSTED_PROXY_HOPS` | `0` | proxies in front whose `X-Forwarded-For` is trusted |
| `UPSTREAM_TIMEOUT_S` | `10` | connect/read timeout to booking (streams: headers) |
| `MAX_BODY_BYTES` | `1048576` | larger request bodies get 413 `payload_too_large` |
| `WEB_ROOT` | the repository's `web/` | the directory of the pages served at `/` |
| `LOG_LEVEL` | `INFO` | root log level |
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import Env, ServiceSettings
from common.tokens import TokenKeys
from gateway.web import DEFAULT_WEB_ROOT

BURST_FACTOR = 2


@dataclass(frozen=True)
class Budget:
    """A token bucket: `rate` tokens per second, holding at most `burst`."""

    rate: float
    burst: int

    @classmethod
    def per_second(cls, rate: float) -> Budget:
        if rate <= 0:
            raise ValueError(f"a rate limit must be positive, not {rate}")
        return cls(rate=rate, burst=max(1, math.ceil(rate * BURST_FACTOR)))


DEFAULT_PER_IP = Budget.per_second(50)
DEFAULT_PER_USER = Budget.per_second(20)
DEFAULT_AUTH_PER_IP = Budget.per_second(5)


@dataclass(frozen=True, kw_only=True)
class GatewaySettings(ServiceSettings):
    token_keys: TokenKeys
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    upstreams: tuple[str, ...] = ("http://127.0.0.1:8081",)
    per_ip: Budget = DEFAULT_PER_IP
    per_user: Budget = DEFAULT_PER_USER
    auth_per_ip: Budget = DEFAULT_AUTH_PER_IP
    rate_limit_prefix: str = "rl:"
    trusted_proxy_hops: int = 0
    upstream_timeout_s: float = 10.0
    max_body_bytes: int = 1024 * 1024
    web_root: str | None = None  # the pages (web/) served at `/`; None serves none

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        env = Env(environ)
        upstreams = tuple(
            url.strip().rstrip("/")
            for url in env.text("BOOKING_URL", "http://127.0.0.1:8081").split(",")
            if url.strip()
        )
        if not upstreams:
            raise ValueError("BOOKING_URL names no upstream")
        return cls(
            **cls.shared(env),
            token_keys=TokenKeys.from_env(dict(env.env), need_signing=False),
            host=env.text("GATEWAY_HOST", cls.host),
            port=env.integer("GATEWAY_PORT", cls.port, minimum=1),
            workers=env.integer("GATEWAY_WORKERS", cls.workers, minimum=1),
            upstreams=upstreams,
            per_ip=Budget.per_second(env.number("RATE_LIMIT_PER_IP", 50)),
            per_user=Budget.per_second(env.number("RATE_LIMIT_PER_USER", 20)),
            auth_per_ip=Budget.per_second(env.number("RATE_LIMIT_AUTH_PER_IP", 5)),
            rate_limit_prefix=env.text("RATE_LIMIT_PREFIX", cls.rate_limit_prefix),
            trusted_proxy_hops=env.integer("TRUSTED_PROXY_HOPS", 0, minimum=0),
            upstream_timeout_s=env.number(
                "UPSTREAM_TIMEOUT_S", cls.upstream_timeout_s, minimum=0.001
            ),
            max_body_bytes=env.integer("MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            web_root=env.text("WEB_ROOT", str(DEFAULT_WEB_ROOT)) or None,
        )
