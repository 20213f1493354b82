"""docker-compose.yml: valid for `docker-compose config -q`, and every environment variable it
gives a booking-rush process is one the code reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CODE_DIRS = ("booking", "gateway", "workers", "common", "stack")
APP_IMAGE = "booking-rush:latest"


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == APP_IMAGE or "build" in service
    }


def environment_names(service: dict[str, Any]) -> set[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {item.split("=", 1)[0] for item in environment}
    return set(environment)


@cache
def _code_lines() -> tuple[str, ...]:
    lines: list[str] = []
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            lines.extend(path.read_text().splitlines())
    return tuple(lines)


def code_reads(name: str) -> bool:
    """True when some line of the code reads `name` from an environment mapping
    (`os.environ[...]`, `env.get("NAME")`, `_int(env, "NAME", ...)`, click's `envvar=`)."""
    quoted = re.compile(rf"[\"']{re.escape(name)}[\"']")
    return any(quoted.search(line) and "env" in line.lower() for line in _code_lines())


def test_compose_file_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("no `docker-compose` on PATH: run `make tools` (observability/ensure-tools.sh)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_whole_stack() -> None:
    services = set(yaml.safe_load(COMPOSE_FILE.read_text())["services"])
    assert {
        "redpanda", "redis", "postgres", "gateway", "booking-1", "booking-2", "outbox-relay",
        "seat-release", "reconciler", "queue-release", "saga-orchestrator", "saga-step",
        "prometheus", "grafana", "tempo", "loki", "otel-collector",
    } <= services  # fmt: skip
    workers = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "workers", "list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    assert set(workers) <= services, "every worker runs in docker-compose"


def test_every_variable_compose_sets_is_read_by_the_code() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services = app_services(compose)
    assert len(services) >= 8
    unread = {
        (service_name, name)
        for service_name, service in services.items()
        for name in environment_names(service)
        if not code_reads(name)
    }
    assert unread == set()


def test_the_variable_check_can_fail() -> None:
    assert code_reads("REDIS_URL")
    assert not code_reads("BOOKING_RUSH_NOT_A_SETTING")
