"""Redis token-bucket rate limiting: per client IP (stricter for the auth group) and per user.

On a single Redis, one EVALSHA of `lua/rate_limit.lua` per request checks the IP bucket and,
for an authenticated caller, the user bucket together: one round trip, and a request refused by
one bucket charges neither. On a Redis Cluster the two keys live in different slots (an IP and a
user share nothing, and that is what spreads the buckets over the shards), so each bucket is
checked by its own atomic call, the IP's first: a request the IP bucket refuses costs the user
nothing; one the user bucket refuses has cost its IP one token. Limiter state is disposable: a
lost bucket is simply full again.

If Redis fails, the limiter fails open for `FAIL_OPEN_S`: requests pass unchecked (counted by
`booking_rush_gateway_rate_limit_fail_open_total`, logged once per outage) rather than failing.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

import lua
from common.redis_client import RedisClient
from common.script_batch import script_runner
from gateway.metrics import GatewayMetrics
from gateway.routes import AUTH_GROUP
from gateway.settings import Budget

logger = logging.getLogger(__name__)

FAIL_OPEN_S = 1.0
SCRIPT_NAME = "rate_limit"


def ip_key(prefix: str, group: str, client_ip: str) -> str:
    return f"{prefix}ip:{group}:{client_ip}"


def user_key(prefix: str, user_id: str) -> str:
    return f"{prefix}user:{user_id}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int = 0
    remaining: int = 0
    reset_s: int = 0
    retry_after_s: int = 0
    scope: str = ""  # "ip" or "user": the bucket that refused
    checked: bool = True  # False when Redis was unavailable and the limiter failed open

    def headers(self) -> list[tuple[bytes, bytes]]:
        """RateLimit-* headers (IETF draft), plus Retry-After when refused."""
        if not self.checked:
            return []
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_s).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after_s).encode()))
        return headers


UNCHECKED = Decision(allowed=True, checked=False)


def _ceil_seconds(milliseconds: int) -> int:
    return max(1, math.ceil(int(milliseconds) / 1000))


class RateLimiter:
    def __init__(
        self,
        redis: RedisClient,
        *,
        per_ip: Budget,
        per_user: Budget,
        auth_per_ip: Budget,
        metrics: GatewayMetrics,
        prefix: str = "rl:",
    ) -> None:
        self._redis = redis
        # The client's timeouts bound each call (gateway/app.py keeps them short).
        self._script = script_runner(redis, lua.source(SCRIPT_NAME))
        self._one_slot_per_call = isinstance(redis, RedisCluster)
        self._per_ip = per_ip
        self._per_user = per_user
        self._auth_per_ip = auth_per_ip
        self._metrics = metrics
        self._prefix = prefix
        self._failing_until = 0.0

    async def load_script(self) -> None:
        """Load the script at start-up so a syntax error fails fast; Redis down is tolerated."""
        try:
            await self._script.load()
        except ResponseError:
            raise
        except (RedisError, RedisClusterException, OSError) as exc:
            logger.warning("rate limiter: Redis unavailable at start-up: %s", exc)

    async def _charge(self, buckets: list[tuple[str, Budget]]) -> list[Any]:
        """The script's answer for these buckets (on a cluster: one call per bucket, stopping
        at the first refusal, whose index is then the bucket's)."""
        if not self._one_slot_per_call:
            args: list[str | int | float] = ["", 1]
            for _key, budget in buckets:
                args += [budget.rate, budget.burst]
            return list(await self._script.run([key for key, _ in buckets], args))
        answers = []
        for index, (key, budget) in enumerate(buckets, start=1):
            answer = list(await self._script.run([key], ["", 1, budget.rate, budget.burst]))
            if int(answer[0]) != 1:
                answer[2] = index
                return answer
            answers.append(answer)
        return min(answers, key=lambda answer: int(answer[2]))  # the tightest bucket

    async def aclose(self) -> None:
        """Closes the script's own connections (the main client is the caller's)."""
        await self._script.aclose()

    async def check_request(self, client_ip: str, user_id: str | None, group: str) -> Decision:
        if time.monotonic() < self._failing_until:
            self._metrics.rate_limit_fail_open.inc()
            return UNCHECKED
        ip_budget = self._auth_per_ip if group == AUTH_GROUP else self._per_ip
        buckets = [(ip_key(self._prefix, group, client_ip), ip_budget)]
        if user_id is not None:
            buckets.append((user_key(self._prefix, user_id), self._per_user))
        try:
            result = await self._charge(buckets)
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failing_until = time.monotonic() + FAIL_OPEN_S
            self._metrics.rate_limit_fail_open.inc()
            logger.warning("rate limiter failing open for %.1fs: %r", FAIL_OPEN_S, exc)
            return UNCHECKED
        if int(result[0]) == 1:
            _, limit, remaining, reset_ms = result
            return Decision(True, int(limit), int(remaining), _ceil_seconds(reset_ms))
        _, _code, index, limit, remaining, reset_ms, retry_ms = result
        scope = "ip" if int(index) == 1 else "user"
        self._metrics.rate_limited(group, scope)
        return Decision(
            False,
            int(limit),
            int(remaining),
            _ceil_seconds(reset_ms),
            _ceil_seconds(retry_ms),
            scope,
        )
