"""docker-compose.yml: valid for `docker-compose config -q` (with and without its profiles),
its cluster profiles, and every environment variable it gives a booking-rush process is one the
code reads."""

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
PROFILES = ("redis-cluster", "redpanda-cluster")


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


def profiled(compose: dict[str, Any], profile: str) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if profile in (service.get("profiles") or ())
    }


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(word) for word in command]


@pytest.mark.parametrize("profiles", [(), PROFILES], ids=["default", "all-profiles"])
def test_compose_file_is_valid(profiles: tuple[str, ...]) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("no `docker-compose` on PATH: run `make tools` (observability/ensure-tools.sh)")
    chosen = [word for profile in profiles for word in ("--profile", profile)]
    result = subprocess.run(
        [binary, *chosen, "-f", str(COMPOSE_FILE), "config", "-q"],
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


def test_the_default_stack_has_no_cluster_services() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    default = {name for name, svc in compose["services"].items() if not svc.get("profiles")}
    assert not {name for name in default if "cluster" in name or name.startswith("redpanda-")}
    assert {"redis", "redpanda"} <= default
    for service in app_services(compose).values():
        assert not service.get("profiles")
        assert "redis" in (service.get("depends_on") or {"redis": {}})  # the single node


def test_redis_cluster_profile_is_three_masters_three_replicas_and_an_init() -> None:
    services = profiled(yaml.safe_load(COMPOSE_FILE.read_text()), "redis-cluster")
    nodes = {name: svc for name, svc in services.items() if name != "redis-cluster-init"}
    assert sorted(nodes) == [f"redis-cluster-{i}" for i in range(1, 7)]
    for name, node in nodes.items():
        words = command_words(node)
        assert node["image"].startswith(("redis:7", "valkey/valkey"))
        assert words[words.index("--cluster-enabled") + 1] == "yes"
        assert words[words.index("--cluster-announce-hostname") + 1] == name
    init = services["redis-cluster-init"]
    script = "\n".join(init["command"])
    assert "--cluster create" in script and "--cluster-replicas 1" in script
    assert "--cluster-yes" in script and "cluster_state:ok" in script  # formed once only
    assert init["restart"] == "no" and set(init["depends_on"]) == set(nodes)


def test_redpanda_cluster_profile_is_three_brokers_that_seed_each_other() -> None:
    services = profiled(yaml.safe_load(COMPOSE_FILE.read_text()), "redpanda-cluster")
    assert sorted(services) == ["redpanda-1", "redpanda-2", "redpanda-3"]
    seeds = {",".join(f"{name}:33145" for name in sorted(services))}
    for name, broker in services.items():
        words = command_words(broker)
        assert {w.split("=", 1)[1] for w in words if w.startswith("--seeds=")} == seeds
        assert f"--advertise-kafka-addr=PLAINTEXT://{name}:9092" in words


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
