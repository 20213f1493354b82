"""No wedged worker process (issue 12): real `python -m workers <name>` processes exit within
10 s of SIGTERM whatever they are doing (exit 0), a loop that stalls is ended by the liveness
watchdog (exit 3), and ticks that keep failing end the loop (exit 4 from the entrypoint)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.processes import free_port
from tests.workers.kafka_rig import own_kafka
from workers.runtime import (
    EXIT_STALLED,
    Supervision,
    WorkerUnhealthyError,
    run_periodic,
)

# It starts processes of its own.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 10.0


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A port that accepts TCP connections and never answers: every Kafka call hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


_LOGS: dict[int, Path] = {}


@contextlib.contextmanager
def worker_process(name: str, env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The worker with its logs (stdout and stderr) in a file that `_output` reads."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers", name],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "INFO", **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    _LOGS[process.pid] = log_path
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def _ticks(port: int, worker: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as answer:
            text = answer.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith("booking_rush_worker_ticks_total{") and f'worker="{worker}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _wait(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        time.sleep(0.1)


def _exit_code_after(process: subprocess.Popen[bytes], sig: int) -> tuple[int, float]:
    sent = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(STOP_WITHIN_S + 5)
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker ignored the signal") from None
    return code, time.monotonic() - sent


def _output(process: subprocess.Popen[bytes]) -> str:
    path = _LOGS.get(process.pid)
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")[-3000:]


@pytest.mark.parametrize("name", ["saga-step", "saga-orchestrator", "outbox-relay"])
def test_a_running_worker_stops_cleanly_on_sigterm(
    name: str, service_env: dict[str, str], migrated_database: str, unique: str, tmp_path: Path
) -> None:
    metrics = free_port()
    env = {**service_env, "KAFKA_NAMESPACE": unique, "WORKER_METRICS_PORT": str(metrics)}
    with worker_process(name, env, tmp_path) as process:
        _wait(lambda: _ticks(metrics, name) >= 2 or process.poll() is not None, 60)
        assert process.poll() is None, _output(process)
        code, took = _exit_code_after(process, signal.SIGTERM)
    assert code == 0, _output(process)
    assert took < STOP_WITHIN_S


def test_a_worker_stuck_on_a_silent_broker_stops_on_sigterm(
    service_env: dict[str, str], migrated_database: str, unique: str, tmp_path: Path
) -> None:
    with black_hole() as bootstrap:
        env = {**service_env, "KAFKA_BOOTSTRAP": bootstrap, "KAFKA_NAMESPACE": unique}
        with worker_process("saga-step", env, tmp_path) as process:
            time.sleep(1.5)  # let it get stuck connecting (not an assertion)
            assert process.poll() is None, _output(process)
            code, took = _exit_code_after(process, signal.SIGTERM)
    assert code == 0, _output(process)
    assert took < STOP_WITHIN_S


def test_a_worker_whose_broker_died_mid_work_stops_on_sigterm(
    service_env: dict[str, str], migrated_database: str, unique: str, tmp_path: Path
) -> None:
    metrics = free_port()
    with own_kafka(tmp_path / "kafka") as broker:
        env = {
            **service_env,
            "KAFKA_BOOTSTRAP": broker.bootstrap,
            "KAFKA_NAMESPACE": unique,
            "WORKER_METRICS_PORT": str(metrics),
        }
        with worker_process("saga-orchestrator", env, tmp_path) as process:
            _wait(lambda: _ticks(metrics, "saga-orchestrator") >= 2, 60)
            broker.kill()
            time.sleep(2)  # reconnect loops under way (not an assertion)
            assert process.poll() is None, _output(process)
            code, took = _exit_code_after(process, signal.SIGTERM)
    assert code in (0, 1), _output(process)
    assert took < STOP_WITHIN_S


def test_a_stalled_worker_is_ended_by_the_liveness_watchdog(
    service_env: dict[str, str], migrated_database: str, unique: str, tmp_path: Path
) -> None:
    with black_hole() as bootstrap:
        env = {
            **service_env,
            "KAFKA_BOOTSTRAP": bootstrap,
            "KAFKA_NAMESPACE": unique,
            "WORKER_LIVENESS_S": "2",
        }
        with worker_process("saga-step", env, tmp_path) as process:
            started = time.monotonic()
            code = process.wait(30)
            took = time.monotonic() - started
            log = _output(process)
    assert code == EXIT_STALLED, log
    assert "WORKER_LIVENESS_S" in log
    assert took < 20


class _Failing:
    name = "test-failing"

    def __init__(self) -> None:
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def tick(self) -> int:
        raise ConnectionError("nothing answers")


async def test_ticks_failing_past_the_bound_end_the_loop() -> None:
    worker = _Failing()
    started = time.monotonic()
    with pytest.raises(WorkerUnhealthyError):
        await asyncio.wait_for(
            run_periodic(
                worker,
                interval_s=0.05,
                burst=False,
                supervision=Supervision(failing_exit_s=1.0),
            ),
            30,
        )
    assert worker.stopped
    assert time.monotonic() - started < 15
