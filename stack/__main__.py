"""`python -m stack run` (make run) and `python -m stack infra up|down|status`."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from stack.foreground import run_stack
from stack.infra import CLUSTER_DIR, SERVER_NAMES, redact, start_infra
from stack.processes import stop_pid
from stack.servers.base import ServerRecord

RUN_DIR = click.option("--run-dir", default=".run", show_default=True, type=click.Path())


@click.group()
def cli() -> None:
    """booking-rush local stack."""


@cli.command()
@RUN_DIR
def run(run_dir: str) -> None:
    """Start infra, migrate, create the admin, start every process; Ctrl-C stops it all."""
    sys.exit(run_stack(Path(run_dir), dict(os.environ)))


@cli.group()
def infra() -> None:
    """Redis, PostgreSQL and the Kafka-protocol broker on their own."""


@infra.command()
@RUN_DIR
@click.option("--database-name", default="booking_rush", show_default=True)
def up(run_dir: str, database_name: str) -> None:
    """Find or start the servers and leave them running (stop with `infra down`)."""
    handle = start_infra(Path(run_dir), dict(os.environ), database_name=database_name)
    endpoints = handle.endpoints
    click.echo(f"REDIS_URL={redact(endpoints.redis_url)}")
    click.echo(f"REDIS_CLUSTER={int(endpoints.redis_cluster)}")
    click.echo(f"DATABASE_URL={redact(endpoints.database_url)}")
    click.echo(f"KAFKA_BOOTSTRAP={endpoints.kafka_bootstrap}")


@infra.command()
@RUN_DIR
def down(run_dir: str) -> None:
    """Stop the local servers recorded under the run directory."""
    for name, server_dir in _server_dirs(Path(run_dir)):
        record = ServerRecord.read(server_dir)
        if record is None:
            continue
        if record.is_running_ours():
            first = signal.SIGINT if name == "postgres" else signal.SIGTERM
            stop_pid(record.pid, first_signal=first)
            click.echo(f"{name}: stopped pid {record.pid}")
        (server_dir / "server.json").unlink(missing_ok=True)


@infra.command()
@RUN_DIR
def status(run_dir: str) -> None:
    """Show the local servers recorded under the run directory."""
    for name, server_dir in _server_dirs(Path(run_dir)):
        record = ServerRecord.read(server_dir)
        if record is None:
            click.echo(f"{name}: no local server recorded")
        else:
            state = "running" if record.is_running_ours() else "gone (stale record)"
            click.echo(f"{name}: pid {record.pid} on 127.0.0.1:{record.port}, {state}")


def _server_dirs(run_dir: Path) -> list[tuple[str, Path]]:
    """(name, directory) of every server the launcher may have recorded, cluster nodes too."""
    dirs = [(name, run_dir / name) for name in SERVER_NAMES]
    nodes = sorted((run_dir / CLUSTER_DIR).glob("node-*"), key=lambda p: p.name.zfill(12))
    return dirs + [(f"redis-{path.name}", path) for path in nodes if path.is_dir()]


if __name__ == "__main__":
    cli()
