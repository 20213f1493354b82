"""The OpenAPI document is the contract, checked by schemathesis through the gateway.

A bounded run with every check on (server errors, status codes, content types, response schemas
and headers, acceptance of valid and rejection of invalid data, Allow on 405, auth ignored or
not), once as a buyer and once as an admin, against `make run`'s whole stack on real servers.
The links in the document let the stateful phase chain create event → publish → reserve → pay
(a third, stateful-only run over the sale's operations); the test then checks in PostgreSQL that
the runs really reserved and paid. Any failure fails the build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveStack, insert_user, live_stack_fixture

# Each run is bounded by --max-time; the stack start and the two runs need more than the default.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
REPORTS = HERE.parent.parent / ".run" / "test" / "contract-reports"  # the last run's, to read
# Fixed so a failure reproduces (`st replay` or the same seed); CONTRACT_SEED explores others.
SEED = os.environ.get("CONTRACT_SEED", "20261202")
SALE_FLOW = (
    "createEvent",
    "publishEvent",
    "reserve",
    "getBooking",
    "cancelBooking",
    "createPayment",
    "getPayment",
)
# never end: the SSE tests cover them
STREAMS = ("streamQueuePosition", "streamAvailability", "streamWaitlist")


contract_stack = live_stack_fixture(
    "contract",
    fixture="contract_stack",
    env={
        "RATE_LIMIT_PER_IP": "100000",
        "RATE_LIMIT_PER_USER": "100000",
        "RATE_LIMIT_AUTH_PER_IP": "100000",
    },
    scope="module",
)


def _schemathesis(live: LiveStack, token: str, report: Path, max_time_s: int, *extra: str) -> str:
    report.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{live.gateway_url}/api/v1/openapi.json",
        "--url",
        f"{live.gateway_url}/api/v1",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        *(arg for stream in STREAMS for arg in ("--exclude-operation-id", stream)),
        "--max-examples",
        "25",
        "--max-time",
        str(max_time_s),
        "--seed",
        SEED,
        "--request-timeout",
        "10",
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        *extra,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=max_time_s + 120,
        check=False,
        cwd=report.parent,  # its cache (.schemathesis/) stays out of the tree
    )
    output = done.stdout + done.stderr
    report.with_suffix(".txt").write_text(output)
    assert done.returncode == 0, output[-20000:] + _blocked_loops(live)
    return output


async def _user(live: LiveStack, role: str) -> tuple[str, str]:
    from booking.db import create_pool

    pool = await create_pool(live.endpoints.database_url, min_size=1, max_size=2)
    try:
        user_id, _ = await insert_user(pool, live, role)
        # An address registration would accept too: the fuzzer reuses what it has seen.
        await pool.execute(
            "UPDATE users SET email = $2 WHERE user_id = $1",
            uuid.UUID(user_id),
            f"{role}-{uuid.uuid4().hex[:8]}@contract.example",
        )
    finally:
        await pool.close()
    return user_id, live.token(user_id, role)


async def _count(live: LiveStack, query: str, *args: Any) -> int:
    from booking.db import create_pool

    pool = await create_pool(live.endpoints.database_url, min_size=1, max_size=2)
    try:
        return int(await pool.fetchval(query, *args))
    finally:
        await pool.close()


async def test_the_api_keeps_its_contract_as_an_admin(
    contract_stack: LiveStack,
) -> None:
    admin_id, token = await _user(contract_stack, "admin")
    output = _schemathesis(contract_stack, token, REPORTS / "admin.xml", max_time_s=120)
    assert "Stateful" in output
    # Over every operation the stateful phase spreads thin; over the sale's own operations it
    # walks create → publish → reserve → pay often enough to get there every time.
    sale = [arg for op in SALE_FLOW for arg in ("--include-operation-id", op)]
    flow = _schemathesis(
        contract_stack, token, REPORTS / "sale.xml", 40, "--phases", "stateful", *sale
    )
    # The runs reached the sale, not only the validation layer.
    reserved = await _count(
        contract_stack, "SELECT count(*) FROM bookings WHERE user_id = $1", uuid.UUID(admin_id)
    )
    paid = await _count(
        contract_stack, "SELECT count(*) FROM payments WHERE user_id = $1", uuid.UUID(admin_id)
    )
    assert reserved > 0 and paid > 0, (reserved, paid, flow[-5000:])


async def test_the_api_keeps_its_contract_as_a_buyer(
    contract_stack: LiveStack,
) -> None:
    _, token = await _user(contract_stack, "customer")
    _schemathesis(contract_stack, token, REPORTS / "buyer.xml", max_time_s=45)


def _blocked_loops(live: LiveStack) -> str:
    """What the services logged about blocked event loops (common/loop_watch.py), stacks
    included: the first place to look when a request timed out."""
    found = []
    for path in sorted(live.stack.logs_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if "event loop blocked" not in line and "event loop ran again" not in line:
                continue
            try:
                entry = json.loads(line)
                found.append(f"{path.name} {entry['ts']}: {entry['msg']}")
            except (ValueError, KeyError, TypeError):
                found.append(f"{path.name}: {line}")
    return "\n\nBlocked event loops:\n" + "\n".join(found[-8:]) if found else ""
