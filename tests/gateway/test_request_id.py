"""X-Request-ID: the client's if sane, else a fresh one; forwarded upstream, echoed always."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from gateway.request_ids import RequestIds, new_request_id
from tests.gateway.conftest import seen_headers

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_generated_when_absent_and_forwarded(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.get("/api/v1/events")
    request_id = answer.headers["x-request-id"]
    assert GENERATED.fullmatch(request_id)
    assert seen_headers(answer)["x-request-id"] == [request_id]
    assert answer.headers.get_list("x-request-id") == [request_id]  # upstream's copy not doubled


async def test_sane_id_passes_through(gateway: httpx.AsyncClient) -> None:
    sane = "client-Req.42_" + "a" * 100
    answer = await gateway.get("/api/v1/events", headers={"X-Request-ID": sane})
    assert answer.headers["x-request-id"] == sane
    assert seen_headers(answer)["x-request-id"] == [sane]


@pytest.mark.parametrize("insane", ["a" * 129, "has space", "semi;colon", "<script>", "ü"])
async def test_insane_id_is_replaced(gateway: httpx.AsyncClient, insane: str) -> None:
    answer = await gateway.get("/api/v1/events", headers={b"X-Request-ID": insane.encode()})
    replaced = answer.headers["x-request-id"]
    assert GENERATED.fullmatch(replaced)
    assert seen_headers(answer)["x-request-id"] == [replaced]


async def test_present_on_errors(gateway: httpx.AsyncClient) -> None:
    for path in ("/nowhere", "/api/v1/bookings"):
        answer = await gateway.get(path, headers={"X-Request-ID": "err-1"})
        assert answer.status_code in (401, 404)
        assert answer.headers["x-request-id"] == "err-1"
    assert GENERATED.fullmatch((await gateway.get("/nowhere")).headers["x-request-id"])


def test_generated_ids_are_distinct_and_keep_the_format() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(GENERATED.fullmatch(request_id.decode()) for request_id in ids)
    assert RequestIds()()[:16] != new_request_id()[:16]  # another process: another prefix


def test_a_forked_process_takes_another_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes its id and leaves
        os.write(write, new_request_id())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64)
    os.close(read)
    os.close(write)
    assert child[:16] != new_request_id()[:16]
