"""A loopback TCP proxy the tests can cut: put it between a client and Redis or PostgreSQL,
then `cut()` (resets every proxied connection and stops listening: the server looks dead,
connections are refused) and `restore()` (listens again on the same port).

This plays a dependency outage without stopping the shared test servers other tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def to_url(cls, url: str) -> tuple[TcpProxy, str]:
        """A started proxy to the server of `url`, and the same URL pointing at the proxy."""
        parts = urlsplit(url)
        assert parts.hostname and parts.port, url
        proxy = cls(parts.hostname, parts.port)
        await proxy.start()
        netloc = parts.netloc.rsplit("@", 1)
        address = f"127.0.0.1:{proxy.port}"
        netloc_new = f"{netloc[0]}@{address}" if len(netloc) == 2 else address
        return proxy, urlunsplit(parts._replace(netloc=netloc_new))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(sink)
            sink.transport.abort()

    async def cut(self) -> None:
        """Stop listening and reset every proxied connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0.05)  # the resets reach the clients

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)
