"""`python -m booking serve | migrate | users add ...`"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import click

from booking.settings import Settings
from common.logs import configure_logging, logging_config
from common.tokens import ROLES


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def cli() -> None:
    """booking-rush booking service."""


@cli.command()
def serve() -> None:
    """Run the booking service (uvicorn, uvloop, httptools)."""
    import uvicorn

    from common.http_server import HTTP_PROTOCOL, KEEP_ALIVE_S
    from common.limits import raise_open_files_limit

    raise_open_files_limit()

    from booking.app import create_app
    from common.redis_client import refuse_mismatch_at_start
    from common.tracing import configure_tracing

    settings = _settings()
    refuse_mismatch_at_start(settings.redis_url, cluster=settings.redis_cluster)
    configure_logging("booking", settings.log_level)
    configure_tracing("booking")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, one send per loop turn (common/http_server.py)
        access_log=False,
        log_config=logging_config("booking", settings.log_level),
        timeout_graceful_shutdown=5,
        backlog=4096,
        # Only the gateway talks to us; never take a client address from a forwarded header.
        proxy_headers=False,
        # Longer than the gateway's pooled keep-alive (30 s), so the gateway always closes an idle
        # connection first and never writes a request into one we are closing.
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    uvicorn.Server(config).run()


@cli.command()
def migrate() -> None:
    """Apply the numbered SQL migrations (idempotent)."""
    from booking.db import migrate as run_migrations

    configure_logging("booking-migrate")
    database_url = os.environ.get("DATABASE_URL") or Settings.database_url
    applied = asyncio.run(run_migrations(database_url))
    click.echo(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


@cli.group()
def users() -> None:
    """Manage user accounts."""


@users.command("add")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default=None, help="display name (default: the email's local part)")
@click.option("--role", type=click.Choice(ROLES), default="customer", show_default=True)
@click.option("--update", is_flag=True, help="update role and password if the user exists")
def users_add(email: str, password: str, name: str | None, role: str, update: bool) -> None:
    """Create a user with a role."""
    from booking.auth import AuthService
    from booking.db import create_pool
    from booking.errors import EmailTakenError

    settings = _settings()
    if len(password) < 8:
        raise click.ClickException("password must be at least 8 characters")

    async def run() -> str:
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            service = AuthService(
                pool=pool,
                keys=settings.token_keys,
                access_ttl_s=settings.access_token_ttl_s,
                refresh_ttl_s=settings.refresh_token_ttl_s,
            )
            display = name or email.split("@", 1)[0]
            if update:
                user = await service.ensure_user(
                    email=email, password=password, name=display, role=role
                )
                return f"user {user.email} ({user.role}) ready: {user.user_id}"
            try:
                user = await service.register(email=email, password=password, name=display)
            except EmailTakenError as exc:
                raise click.ClickException(f"{email} exists; use --update to change it") from exc
            if role != "customer":
                user = await service.ensure_user(
                    email=email, password=password, name=display, role=role
                )
            return f"user {user.email} ({user.role}) created: {user.user_id}"
        finally:
            await pool.close()

    click.echo(asyncio.run(run()))


async def _with_parts(settings: Settings, work: Any) -> Any:
    from booking.catalog import Catalog
    from booking.db import create_pool
    from booking.inventory.scripts import Scripts
    from common.redis_client import connect

    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    redis = await connect(settings.redis_url, cluster=settings.redis_cluster)
    scripts = Scripts(redis)
    try:
        await scripts.load()
        return await work(pool, scripts, Catalog(pool=pool, scripts=scripts))
    finally:
        await scripts.aclose()
        await redis.aclose()
        await pool.close()


@cli.command("rebuild-inventory")
@click.argument("event_id")
def rebuild_inventory(event_id: str) -> None:
    """Replace an event's Redis inventory with PostgreSQL's bookings (after Redis lost it)."""
    from booking.reconcile import rebuild_event

    async def work(pool: Any, scripts: Any, catalog: Any) -> int:
        return await rebuild_event(pool, scripts, event_id)

    try:
        live = asyncio.run(_with_parts(_settings(), work))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"event {event_id} rebuilt from PostgreSQL: {live} live bookings")


DEMO_EVENT_NAME = "booking-rush demo drop"


@cli.command("seed-demo")
@click.option("--owner-email", envvar="ADMIN_EMAIL", default="admin@booking-rush.local")
def seed_demo(owner_email: str) -> None:
    """Create and publish a demo event (once; later runs leave it alone)."""
    from datetime import UTC, datetime, timedelta

    from booking.schemas import EventBody
    from booking.store.events import list_events
    from booking.store.users import find_user_by_email
    from common.tokens import Identity

    async def work(pool: Any, scripts: Any, catalog: Any) -> str:
        existing = [
            e
            for e in await list_events(pool, statuses=("draft", "on_sale"), limit=1000)
            if e.name == DEMO_EVENT_NAME
        ]
        if existing:
            return f"demo event exists: {existing[0].event_id}"
        owner = await find_user_by_email(pool, owner_email)
        if owner is None:
            raise click.ClickException(f"no user {owner_email}; create the admin first")
        now = datetime.now(UTC)
        body = EventBody.model_validate(
            {
                "name": DEMO_EVENT_NAME,
                "venue": "Loopback Arena",
                "starts_at": now + timedelta(days=30),
                "sale_starts_at": now,
                "max_per_user": 4,
                "currency": "EUR",
                "zones": [
                    {"name": "Floor", "capacity": 1000, "price_minor": 4500},
                    {
                        "name": "Balcony",
                        "price_minor": 9000,
                        "seats": [f"{row}{n}" for row in "ABCDE" for n in range(1, 11)],
                    },
                ],
            }
        )
        identity = Identity(owner.user_id, owner.role, 0)
        event = await catalog.create_event(identity, body)
        await catalog.publish_event(identity, event.event_id, now)
        return f"demo event published: {event.event_id}"

    click.echo(asyncio.run(_with_parts(_settings(), work)))


if __name__ == "__main__":
    sys.exit(cli())
