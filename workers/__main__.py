"""`python -m workers list` and `python -m workers <name> [--burst] [--check]`."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from common.logs import configure_logging
from common.redis_client import refuse_mismatch_at_start
from common.tracing import configure_tracing
from workers.runtime import (
    EXIT_FAILING,
    Supervision,
    WorkerUnhealthyError,
    run_periodic,
    serve_metrics,
)
from workers.settings import WorkerSettings


def _outbox_relay(settings: WorkerSettings) -> Any:
    from workers.outbox_relay import OutboxRelay

    return OutboxRelay.provisioned(settings)


def _seat_release(settings: WorkerSettings) -> Any:
    from workers.seat_release import SeatRelease

    return SeatRelease.provisioned(settings)


def _reconciler(settings: WorkerSettings) -> Any:
    from workers.reconciler import Reconciler

    return Reconciler.provisioned(settings)


def _saga_orchestrator(settings: WorkerSettings) -> Any:
    from workers.saga_orchestrator import SagaOrchestrator

    return SagaOrchestrator.provisioned(settings)


def _saga_step(settings: WorkerSettings) -> Any:
    from workers.saga_step import SagaStep

    return SagaStep.provisioned(settings)


def _queue_release(settings: WorkerSettings) -> Any:
    from workers.queue_release import QueueRelease

    return QueueRelease.provisioned(settings)


def _notifier(settings: WorkerSettings) -> Any:
    from workers.notifier import Notifier

    return Notifier.provisioned(settings)


# A stop signal: stop() gets STOP_TIMEOUT_S, the process is gone HARD_EXIT_S after the signal at
# the latest (every process exits within 10 s of SIGTERM).
STOP_TIMEOUT_S = 5.0
HARD_EXIT_S = 9.0

# name -> factory of the worker as run: its clients opened by its start() (workers/resources.py);
# `make run` starts one process per entry.
WORKERS: dict[str, Callable[[WorkerSettings], Any]] = {
    "outbox-relay": _outbox_relay,
    "seat-release": _seat_release,
    "reconciler": _reconciler,
    "saga-orchestrator": _saga_orchestrator,
    "saga-step": _saga_step,
    "queue-release": _queue_release,
    "notifier": _notifier,
}


@click.group()
def cli() -> None:
    """booking-rush background workers."""


@cli.command("list")
def list_workers() -> None:
    """Print every worker name, one a line."""
    for name in WORKERS:
        click.echo(name)


def _worker_command(name: str) -> click.Command:
    @click.command(name)
    @click.option("--burst", is_flag=True, help="drain the work there is, then exit")
    @click.option("--check", is_flag=True, help="check the worker's dependencies and exit")
    def command(burst: bool, check: bool) -> None:
        settings = WorkerSettings.from_env()
        refuse_mismatch_at_start(settings.redis_url, cluster=settings.redis_cluster)
        configure_logging(name, settings.log_level)
        configure_tracing(name)
        worker = WORKERS[name](settings)
        if check:

            async def probe() -> None:
                await worker.start()
                await worker.stop()

            asyncio.run(probe())
            click.echo(f"{name}: ok")
            return
        if not burst:
            serve_metrics(settings.metrics_host, settings.metrics_port)
        import uvloop

        # Workers that wait inside their tick (Kafka polls, LISTEN) need no idle sleep after it.
        interval_s = getattr(worker, "idle_interval_s", settings.interval_s)
        supervision = Supervision(
            liveness_s=settings.liveness_s or None,
            failing_exit_s=settings.failing_exit_s or None,
            stop_timeout_s=STOP_TIMEOUT_S,
            hard_exit_s=HARD_EXIT_S,
        )
        try:
            handled = uvloop.run(
                run_periodic(worker, interval_s=interval_s, burst=burst, supervision=supervision)
            )
        except WorkerUnhealthyError as exc:
            logging.getLogger("workers").error("%s: exiting to be restarted", exc)
            sys.exit(EXIT_FAILING)
        if burst:
            click.echo(f"{name}: handled {handled}")

    command.help = f"Run the {name} worker."
    return command


for _name in WORKERS:
    cli.add_command(_worker_command(_name))


if __name__ == "__main__":
    sys.exit(cli())
