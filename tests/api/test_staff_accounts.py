"""Door staff accounts: made (or an account turned staff) with the user CLI an operator runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import httpx

from tests.api.conftest import register_and_login


async def _users_add(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "booking", "users", "add", *args]
    return await asyncio.to_thread(
        subprocess.run,
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _role(client: httpx.AsyncClient, email: str, password: str) -> str:
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    return str(me.json()["role"])


async def test_the_user_cli_makes_staff_accounts(
    client: httpx.AsyncClient, service_env: dict[str, str], clean_db: Any
) -> None:
    email = f"door-{uuid.uuid4().hex[:8]}@example.com"
    made = await _users_add(
        service_env, "--email", email, "--password", "door-password", "--role", "staff"
    )
    assert made.returncode == 0, made.stderr
    assert "(staff) created" in made.stdout
    assert await _role(client, email, "door-password") == "staff"

    customer = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    await register_and_login(client, customer, "buyer-password")
    turned = await _users_add(
        service_env,
        *("--email", customer, "--password", "buyer-password", "--role", "staff", "--update"),
    )
    assert turned.returncode == 0, turned.stderr
    assert await _role(client, customer, "buyer-password") == "staff"
