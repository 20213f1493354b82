"""Lua scripts on a single Redis node, spoken in RESP directly: the path every script of the
gateway and the booking service takes on a plain TCP node (`common.script_batch.script_runner`
picks it; a cluster, TLS or a unix socket keep redis-py's, `ScriptBatcher`).

Why not redis-py here: profiled under `make bench`, its pipeline (command packing, the
retry wrapper, per-command response parsing, a task per batch) was ~20 % of the gateway's CPU
per request for one call of one script, and ~15 % of the booking service's per reserve. The
calls of one event-loop turn are written as one buffer of EVALSHAs to one connection, parsed by
`hiredis.Reader`, and each caller's future is resolved from `data_received`: no task and no
await per batch. Each call is still its own atomic script; a batch holds its connection until
its last answer, so batches in flight at once use connections of their own. A script Redis
lost (restart, SCRIPT FLUSH) is sent again as EVAL for the calls that did not run.

Errors take redis-py's classes (`RedisError`): a call Redis refused gets its `ResponseError`; a
connection that fails, closes or stays silent past `timeout_s` fails every call of its batch
(they may have run, as with a pipeline) and is dropped. Unlike redis-py's pipeline, a batch is
never sent twice by itself: a script that may have run is not run again behind the caller's back.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.turn_batch import Call, TurnBatcher

_ENCODED_MAX = 1024
# Without a socket timeout on the client: how long a batch or a connect may take.
DEFAULT_TIMEOUT_S = 10.0
# Called once with every answer of a batch, in order, or with the error that ended it.
_Done = Callable[[list[Any] | Exception], None]


def _bulk(value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def encode_command(*parts: Any) -> bytes:
    """One command in RESP: an array of bulk strings (str/int/float as redis-py encodes them)."""
    return b"*%d\r\n%b" % (len(parts), b"".join([_bulk(part) for part in parts]))


class _Connection(asyncio.Protocol):
    """One connection; it carries one batch (N commands written, N answers read) at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader(replyError=ResponseError)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._expected = 0
        self._answers: list[Any] = []
        self._done: _Done | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, data: bytes, count: int, done: _Done) -> None:
        """Write `count` commands; `done` gets their `count` answers (or the failure)."""
        assert self.transport is not None and self._done is None
        self._expected, self._answers, self._done = count, [], done
        self._timer = self._loop.call_later(self._timeout_s, self._timed_out)
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        answers = self._answers
        while True:
            answer = self._reader.gets()
            if answer is False:
                break
            answers.append(answer)
        if self._done is None:
            if answers:
                self._end(RedisConnectionError("Redis sent data with no command in flight"))
        elif len(answers) >= self._expected:
            self._finish(answers)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(RedisConnectionError(f"Redis closed the connection: {exc!r}"))

    def _timed_out(self) -> None:
        self._timer = None
        self._end(RedisTimeoutError(f"no answer from Redis within {self._timeout_s} s"))

    def _end(self, error: Exception) -> None:
        """Fail the batch in flight and drop the connection (its answers can no longer be
        matched to their calls)."""
        self.close()
        self._finish(error)

    def _finish(self, outcome: list[Any] | Exception) -> None:
        done, self._done = self._done, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._answers = []
        if done is not None:
            done(outcome)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def node_address(redis: Redis) -> dict[str, Any] | None:
    """Where a plain TCP client connects (host, port, db, credentials) and its timeouts; None
    for anything else (TLS, a unix socket), which keeps the redis-py path."""
    pool = redis.connection_pool
    if pool.connection_class is not Connection:
        return None
    options = pool.connection_kwargs
    timeout_s = options.get("socket_timeout") or DEFAULT_TIMEOUT_S
    return {
        "host": options.get("host", "localhost"),
        "port": int(options.get("port", 6379)),
        "db": int(options.get("db", 0) or 0),
        "username": options.get("username"),
        "password": options.get("password"),
        "timeout_s": float(timeout_s),
        "connect_timeout_s": float(options.get("socket_connect_timeout") or timeout_s),
    }


class WireScript(TurnBatcher):
    """Runs one Lua script on one Redis node: the calls of one loop turn share one write.
    Answers come as hiredis gives them (bulk strings as bytes, integers as int), as redis-py
    gives them without `decode_responses`."""

    def __init__(
        self,
        source: str,
        *,
        host: str,
        port: int,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float,
        connect_timeout_s: float | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._host, self._port = host, port
        self._timeout_s = timeout_s
        self._connect_timeout_s = timeout_s if connect_timeout_s is None else connect_timeout_s
        handshake: list[bytes] = []
        if password is not None:
            auth = (username, password) if username else (password,)
            handshake.append(encode_command("AUTH", *auth))
        if db:
            handshake.append(encode_command("SELECT", db))
        self._handshake = handshake
        # The arguments of a call, encoded, by their values: a limiter sends few distinct sets
        # (its budgets). Equal values of another type (1 and 1.0) share an entry: Lua's
        # tonumber reads both alike. Bounded: dropped whole when full.
        self._encoded_args: dict[tuple[Any, ...], bytes] = {}
        self._heads: dict[tuple[str, int, int], bytes] = {}
        self._idle: list[_Connection] = []
        self._connecting: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """SCRIPT LOAD (at start-up, so a syntax error fails there and not mid-sale)."""
        connection = await self._connect()
        loaded: asyncio.Future[list[Any] | Exception] = asyncio.get_running_loop().create_future()
        connection.send(encode_command("SCRIPT", "LOAD", self.source), 1, loaded.set_result)
        outcome = await loaded
        answer = outcome if isinstance(outcome, Exception) else outcome[0]
        if isinstance(answer, Exception):
            connection.close()
            raise answer
        self._idle.append(connection)

    def _flush(self, batch: list[Call]) -> None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                self._send(connection, batch, "EVALSHA", self._sha)
                return
        task = asyncio.ensure_future(self._connect_and_send(batch))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, batch: list[Call]) -> None:
        try:
            connection = await self._connect()
        except Exception as exc:
            self.fail(batch, exc)
            return
        self._send(connection, batch, "EVALSHA", self._sha)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self._timeout_s), self._host, self._port
                )
                if self._handshake:
                    answered: asyncio.Future[list[Any] | Exception] = loop.create_future()

                    def settle(outcome: list[Any] | Exception) -> None:
                        if not answered.done():
                            answered.set_result(outcome)

                    connection.send(b"".join(self._handshake), len(self._handshake), settle)
                    answers = await answered
                    if isinstance(answers, Exception):
                        raise answers
                    for answer in answers:
                        if isinstance(answer, Exception):
                            raise answer
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError(
                    f"no connection to Redis in {self._connect_timeout_s} s"
                ) from exc
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            raise
        return connection

    def _encode(self, verb: str, script: str, keys: Sequence[Any], args: Sequence[Any]) -> bytes:
        values = tuple(args)
        tail = self._encoded_args.get(values)
        if tail is None:
            if len(self._encoded_args) >= _ENCODED_MAX:
                self._encoded_args.clear()
            tail = self._encoded_args[values] = b"".join([_bulk(arg) for arg in values])
        shape = (verb, len(keys), len(values))
        head = self._heads.get(shape)
        if head is None:
            count = 3 + len(keys) + len(values)
            head = b"*%d\r\n%b" % (count, b"".join([_bulk(verb), _bulk(script), _bulk(len(keys))]))
            self._heads[shape] = head
        return b"".join([head, *[_bulk(key) for key in keys], tail])

    def _send(self, connection: _Connection, batch: list[Call], verb: str, script: str) -> None:
        # Encoded here, in a loop callback: a call whose arguments cannot be encoded must fail
        # on its own, or its caller (and what it holds, a row lock say) would wait forever.
        parts: list[bytes] = []
        sendable: list[Call] = []
        for call in batch:
            keys, args, future = call
            try:
                parts.append(self._encode(verb, script, keys, args))
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            sendable.append(call)
        if not sendable:
            if not connection.closed:
                self._idle.append(connection)
            return
        batch = sendable
        data = b"".join(parts)

        def done(outcome: list[Any] | Exception) -> None:
            if isinstance(outcome, Exception):
                self.fail(batch, outcome)
                return
            unloaded = [
                n
                for n, answer in enumerate(outcome)
                if isinstance(answer, ResponseError) and str(answer).startswith("NOSCRIPT")
            ]
            for n, ((*_, future), answer) in enumerate(zip(batch, outcome, strict=True)):
                if future.done() or (unloaded and n in unloaded):
                    continue  # gone meanwhile, or sent again below
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
            if unloaded and verb == "EVALSHA":  # Redis restarted or was flushed
                self._send(connection, [batch[n] for n in unloaded], "EVAL", self.source)
            elif not connection.closed:
                self._idle.append(connection)

        connection.send(data, len(batch), done)

    async def aclose(self) -> None:
        for task in tuple(self._connecting):
            task.cancel()
        while self._idle:
            self._idle.pop().close()
