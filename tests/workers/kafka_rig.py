"""Helpers for the workers' fault tests: a consumer that records what it handled in PostgreSQL,
workers run in-process by the real tick loop, and a private Tansu broker the test may kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from booking.messaging import Envelope
from booking.store.messages import claim_message
from stack.processes import free_port, wait_gone
from stack.servers.base import LocalServer
from stack.servers.kafka import start_local_kafka
from tests.polling import wait_for as wait_for  # re-exported for the tests here
from workers.consumer import ConsumerWorker
from workers.runtime import WorkerUnhealthyError, run_periodic


class ClaimingRecorder(ConsumerWorker):
    """Claims every message id in processed_messages (as the saga workers do) and keeps a list
    of what this copy handled; `delay_s` makes each message take a while."""

    name = "test-claiming-recorder"

    def __init__(self, *args: Any, delay_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s
        self.handled: list[str] = []

    async def handle(self, envelope: Envelope) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        async with self.pool.acquire() as conn, conn.transaction():
            if await claim_message(conn, self.name, envelope.id):
                self.handled.append(envelope.id)


async def processed_ids(pool: asyncpg.Pool, consumer: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT message_id::text AS id FROM processed_messages WHERE consumer = $1", consumer
    )
    return {row["id"] for row in rows}


@contextlib.asynccontextmanager
async def ticking(worker: Any, *, interval_s: float = 0.0) -> AsyncIterator[asyncio.Task[int]]:
    """Runs `worker` under `run_periodic` (no process guards) for the block; stops it after."""
    task = asyncio.create_task(run_periodic(worker, interval_s=interval_s, burst=False))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def supervised(make: Callable[[], Any]) -> AsyncIterator[list[Any]]:
    """Like `ticking`, but a worker that ends itself with WorkerUnhealthyError (asking for a
    fresh process) is replaced by a fresh one, as `make run`'s supervisor replaces the process.
    Yields the list of workers that ended so."""
    ended: list[Any] = []

    async def run() -> None:
        while True:
            worker = make()
            try:
                await run_periodic(worker, interval_s=0.0, burst=False)
                return
            except WorkerUnhealthyError:
                ended.append(worker)
                await asyncio.sleep(0.5)

    task = asyncio.create_task(run())
    try:
        yield ended
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


class OwnKafka:
    """A Tansu broker of the test's own (in-memory storage), killable and restartable on the
    same port: restarted, it is empty, as after a crash."""

    def __init__(self, server_dir: Path) -> None:
        self.server_dir = server_dir
        self.port = free_port()
        self.server: LocalServer | None = start_local_kafka(server_dir, self.port)
        assert self.server.port == self.port

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.server is not None
        pid = self.server.record.pid
        os.kill(pid, signal.SIGKILL)
        assert wait_gone(pid, 10, self.server.process)
        self.server.stop()  # drops the record (and reaps the process)
        self.server = None

    def start(self) -> None:
        assert self.server is None
        self.server = start_local_kafka(self.server_dir, self.port)
        assert self.server.port == self.port, "the broker came back on another port"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@contextlib.contextmanager
def own_kafka(server_dir: Path) -> Iterator[OwnKafka]:
    broker = OwnKafka(server_dir)
    try:
        yield broker
    finally:
        broker.stop()
