"""Set up a ticket drop against a running stack and write its plan (JSON) for the locustfile.

`python -m loadtests.drop_setup --users N --seats S --out plan.json`

Buyers are written straight into PostgreSQL (one COPY) with one shared argon2 password hash,
and get access tokens minted with the stack's JWT secret: registering thousands of users through
the API would spend minutes hashing passwords and hit the per-IP auth limit. A share of buyers
(`--login-share`) still logs in through POST /auth/login during the drop. An admin user is made
the same way; it creates the event (queue on) through the API and reads the stats at the end.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click

from loadtests.target import Target, insert_users, mint_token, resolve_target

SEATS_PER_ROW = 10


@dataclass(frozen=True)
class DropSettings:
    users: int
    seats: int
    seated_share: float = 0.5
    max_per_user: int = 4
    max_concurrent: int = 0  # 0: derived from the seats
    release_per_tick: int = 50
    pass_ttl_s: int = 30
    login_share: float = 0.02

    def queue(self) -> dict[str, Any]:
        concurrent = self.max_concurrent or max(10, min(200, self.seats // 2))
        return {
            "enabled": True,
            "max_concurrent": concurrent,
            "release_per_tick": self.release_per_tick,
            "pass_ttl_s": self.pass_ttl_s,
        }

    def zones(self) -> list[dict[str, Any]]:
        seated = int(self.seats * self.seated_share) if self.seats >= 2 else 0
        zones: list[dict[str, Any]] = []
        if self.seats - seated > 0:
            zones.append({"name": "Floor", "capacity": self.seats - seated, "price_minor": 4500})
        if seated > 0:
            labels = seat_labels(seated)
            zones.append({"name": "Balcony", "price_minor": 6500, "seats": labels})
        return zones


def seat_labels(count: int) -> list[str]:
    """A1..A10, B1..B10, ... (rows past Z continue as AA, AB, ...)."""
    letters = string.ascii_uppercase
    labels = []
    for index in range(count):
        row, seat = divmod(index, SEATS_PER_ROW)
        name = letters[row % 26] * (row // 26 + 1)
        labels.append(f"{name}{seat + 1}")
    return labels


async def _create_event(api: str, admin_token: str, settings: DropSettings) -> dict[str, Any]:
    body = {
        "name": f"drop-{uuid.uuid4().hex[:8]}",
        "venue": "Loopback Arena",
        "starts_at": "2031-06-01T20:00:00Z",
        "sale_starts_at": "2021-01-01T10:00:00Z",
        "max_per_user": settings.max_per_user,
        "currency": "EUR",
        "zones": settings.zones(),
        "queue": settings.queue(),
    }
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{api}/events", json=body) as created:
            event = await created.json()
            if created.status != 201:
                raise RuntimeError(f"creating the event: {created.status} {event}")
        async with http.post(f"{api}/events/{event['event_id']}/publish") as published:
            if published.status != 200:
                raise RuntimeError(f"publishing: {published.status} {await published.text()}")
            return dict(await published.json())


async def create_plan(target: Target, settings: DropSettings) -> dict[str, Any]:
    from argon2 import PasswordHasher

    keys = target.keys()
    password = secrets.token_urlsafe(12)
    shared_hash = PasswordHasher().hash(password)
    ((admin_id, _),) = await insert_users(target.database_url, 1, role="admin", label="drop-admin")
    buyers = await insert_users(
        target.database_url, settings.users, password_hash=shared_hash, label="drop"
    )
    admin_token = mint_token(keys, admin_id, "admin")
    event = await _create_event(target.api, admin_token, settings)
    every = round(1 / settings.login_share) if settings.login_share > 0 else 0
    return {
        "gateway_url": target.gateway_url,
        "database_url": target.database_url,
        "event": event,
        "admin_token": admin_token,
        "password": password,
        "settings": asdict(settings),
        "buyers": [
            {
                "user_id": user_id,
                "email": email,
                "token": mint_token(keys, user_id),
                "login": bool(every) and index % every == 0,
            }
            for index, (user_id, email) in enumerate(buyers)
        ],
    }


@click.command()
@click.option("--users", type=int, required=True)
@click.option("--seats", type=int, required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--seated-share", type=float, default=0.5, show_default=True)
@click.option("--max-concurrent", type=int, default=0, help="queue outflow; 0 = from seats")
@click.option("--release-per-tick", type=int, default=50, show_default=True)
@click.option("--pass-ttl", type=int, default=30, show_default=True)
@click.option("--login-share", type=float, default=0.02, show_default=True)
def main(
    users: int,
    seats: int,
    out: str,
    seated_share: float,
    max_concurrent: int,
    release_per_tick: int,
    pass_ttl: int,
    login_share: float,
) -> None:
    """Create the drop's users and event on the running stack; write the plan to OUT."""
    settings = DropSettings(
        users=users,
        seats=seats,
        seated_share=seated_share,
        max_concurrent=max_concurrent,
        release_per_tick=release_per_tick,
        pass_ttl_s=pass_ttl,
        login_share=login_share,
    )
    plan = asyncio.run(create_plan(resolve_target(), settings))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(plan))
    click.echo(f"drop event {plan['event']['event_id']}: {users} buyers, {seats} seats")


if __name__ == "__main__":
    main()
