"""What `make run` starts: settings from the environment and the list of process specs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.tokens import generate_secret
from stack.env_counts import env_count
from stack.infra import Endpoints
from stack.processes import free_port, port_is_free

DEFAULT_GATEWAY_PORT = 8080
DEFAULT_BOOKING_PORT = 8081
DEFAULT_METRICS_BASE_PORT = 9100
DEFAULT_BOOKING_REPLICAS = 2
DEFAULT_ADMIN_EMAIL = "admin@booking-rush.local"
DEFAULT_ADMIN_PASSWORD = "admin-change-me"
HEALTH_PATH = "/api/v1/health"
WEBHOOK_PATH = "/api/v1/payments/webhook"


@dataclass(frozen=True)
class ProcessSpec:
    """One long-running (or one-shot setup) OS process."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health_url: str | None = None


@dataclass(frozen=True)
class StackSettings:
    gateway_port: int = DEFAULT_GATEWAY_PORT
    booking_port: int = DEFAULT_BOOKING_PORT
    metrics_base_port: int = DEFAULT_METRICS_BASE_PORT
    admin_email: str = DEFAULT_ADMIN_EMAIL
    admin_password: str = DEFAULT_ADMIN_PASSWORD
    database_name: str = "booking_rush"
    booking_replicas: int = DEFAULT_BOOKING_REPLICAS
    gateway_replicas: int = 1
    worker_copies: int = 1
    # The booking processes' ports when not simply BOOKING_PORT + i (see with_replica_ports).
    replica_ports: tuple[int, ...] = ()
    # The gateways' ports once checked to be free (see with_replica_ports).
    fixed_gateway_ports: tuple[int, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackSettings:
        """GATEWAY_PORT, GATEWAY_REPLICAS, BOOKING_PORT, BOOKING_REPLICAS, WORKER_COPIES,
        WORKER_METRICS_BASE_PORT, ADMIN_EMAIL, ADMIN_PASSWORD."""
        return cls(
            gateway_port=int(env.get("GATEWAY_PORT") or DEFAULT_GATEWAY_PORT),
            booking_port=int(env.get("BOOKING_PORT") or DEFAULT_BOOKING_PORT),
            metrics_base_port=int(env.get("WORKER_METRICS_BASE_PORT") or DEFAULT_METRICS_BASE_PORT),
            admin_email=env.get("ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL,
            admin_password=env.get("ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD,
            booking_replicas=env_count(env, "BOOKING_REPLICAS", DEFAULT_BOOKING_REPLICAS),
            gateway_replicas=env_count(env, "GATEWAY_REPLICAS", 1),
            worker_copies=env_count(env, "WORKER_COPIES", 1),
        )

    @property
    def gateway_url(self) -> str:
        """The first gateway (GATEWAY_PORT)."""
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def gateway_ports(self) -> tuple[int, ...]:
        """One port per gateway: GATEWAY_PORT, then the next ports that no booking process or
        worker metrics endpoint uses."""
        if self.fixed_gateway_ports:
            return self.fixed_gateway_ports
        return _gateway_ports(self, check_free=False)

    def metrics_ports_reserved(self, worker_count: int) -> range:
        """The metrics ports of every copy of every worker: base + copy * workers + index."""
        start = self.metrics_base_port
        return range(start, start + worker_count * max(1, self.worker_copies))

    @property
    def booking_ports(self) -> tuple[int, ...]:
        """One port per booking process: BOOKING_PORT, BOOKING_PORT + 1, ..."""
        if self.replica_ports:
            return self.replica_ports
        return tuple(self.booking_port + i for i in range(max(1, self.booking_replicas)))

    @property
    def booking_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.booking_ports]

    @property
    def booking_url(self) -> str:
        """The first booking process (BOOKING_PORT)."""
        return f"http://127.0.0.1:{self.booking_port}"

    @property
    def upstream_urls(self) -> str:
        """The gateway's BOOKING_URL: every booking process, comma-separated (round-robin)."""
        return ",".join(self.booking_urls)

    @property
    def webhook_url(self) -> str:
        """Where the mock provider sends webhooks under make run: through the gateway, so any
        live booking process takes them."""
        return self.gateway_url + WEBHOOK_PATH


def copy_name(name: str, index: int) -> str:
    """`name`, `name-2`, `name-3`, ... for copy 0, 1, 2, ..."""
    return name if index == 0 else f"{name}-{index + 1}"


def booking_name(index: int) -> str:
    """`booking`, `booking-2`, `booking-3`, ..."""
    return copy_name("booking", index)


def with_replica_ports(settings: StackSettings, worker_count: int) -> StackSettings:
    """The settings with every booking and gateway port fixed. Booking replica i gets
    BOOKING_PORT + i, unless that port is taken or is the gateway's or a worker's metrics port;
    then a free one (ports fixed beforehand, one per replica, are kept). Gateways take the next
    free ports from GATEWAY_PORT on."""
    reserved = {settings.gateway_port, *settings.metrics_ports_reserved(worker_count)}
    ports = [settings.booking_port]
    if len(settings.replica_ports) == max(1, settings.booking_replicas):
        ports = list(settings.replica_ports)
    for index in range(len(ports), max(1, settings.booking_replicas)):
        port = settings.booking_port + index
        while port in reserved or port in ports or not port_is_free(port):
            port = free_port()
        ports.append(port)
    fixed = replace(settings, replica_ports=tuple(ports))
    gateways = _gateway_ports(fixed, check_free=True, worker_count=worker_count)
    return replace(fixed, fixed_gateway_ports=gateways)


def _gateway_ports(
    settings: StackSettings, *, check_free: bool, worker_count: int = 0
) -> tuple[int, ...]:
    taken = {*settings.booking_ports, *settings.metrics_ports_reserved(worker_count)}
    ports = [settings.gateway_port]
    port = settings.gateway_port
    for _ in range(1, settings.gateway_replicas):
        port += 1
        while port in taken or (check_free and not port_is_free(port)):
            port += 1
        ports.append(port)
    return tuple(ports)


def spare_port(taken: set[int]) -> int:
    """A free port that is none of `taken` (e.g. for the metrics of a worker's extra copy)."""
    while True:
        port = free_port()
        if port not in taken:
            return port


def keep_secret(run_dir: Path, filename: str) -> str:
    """A secret generated once and kept in `run_dir/filename` (mode 0600) across restarts."""
    path = run_dir / filename
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    value = generate_secret()
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def secrets_env(run_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """JWT_SECRET (unless RS256) and INTERNAL_SECRET: the configured ones, else kept ones."""
    out: dict[str, str] = {}
    if env.get("JWT_ALGORITHM", "HS256").upper() != "RS256" and not env.get("JWT_SECRET"):
        out["JWT_SECRET"] = keep_secret(run_dir, "jwt_secret")
    if not env.get("INTERNAL_SECRET"):
        out["INTERNAL_SECRET"] = keep_secret(run_dir, "internal_secret")
    return out


def process_env(
    env: Mapping[str, str], endpoints: Endpoints, settings: StackSettings
) -> dict[str, str]:
    """The environment every started process shares (settings are passed through as given)."""
    return {
        **env,
        "REDIS_URL": endpoints.redis_url,
        # The services refuse to start when this does not match the server they reach.
        "REDIS_CLUSTER": "1" if endpoints.redis_cluster else "0",
        "DATABASE_URL": endpoints.database_url,
        "KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
        "GATEWAY_PORT": str(settings.gateway_port),
        "BOOKING_PORT": str(settings.booking_port),
        "BOOKING_URL": settings.upstream_urls,
        "BOOKING_REPLICAS": str(len(settings.booking_ports)),
        # The mock provider's webhooks go through the gateway, so a dead replica drops none.
        "PAYMENT_WEBHOOK_URL": env.get("PAYMENT_WEBHOOK_URL") or settings.webhook_url,
        "ADMIN_EMAIL": settings.admin_email,
        "PYTHONUNBUFFERED": "1",
    }


def setup_specs(settings: StackSettings, env: Mapping[str, str]) -> list[ProcessSpec]:
    """One-shot steps before the services start; `seed-demo` is skipped when it does not exist."""
    python = sys.executable
    admin = [
        "users", "add",
        "--email", settings.admin_email,
        "--password", settings.admin_password,
        "--role", "admin",
        "--update",
    ]  # fmt: skip
    return [
        ProcessSpec("migrate", [python, "-m", "booking", "migrate"], dict(env)),
        ProcessSpec("admin", [python, "-m", "booking", *admin], dict(env)),
        ProcessSpec("seed-demo", [python, "-m", "booking", "seed-demo"], dict(env)),
    ]


def list_workers(env: Mapping[str, str]) -> list[str]:
    """Worker names from `python -m workers list`; empty when that command fails."""
    result = subprocess.run(
        [sys.executable, "-m", "workers", "list"],
        capture_output=True,
        text=True,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def build_process_specs(
    settings: StackSettings, env: Mapping[str, str], worker_names: list[str]
) -> list[ProcessSpec]:
    """The gateways (`gateway`, `gateway-2`, ..., each in front of every booking process), the
    booking processes (`booking`, `booking-2`, ... on BOOKING_PORT + i) and WORKER_COPIES
    processes per worker (`<worker>`, `<worker>-2`, ...; metrics on base port + index for the
    first copies, each further copy on a port of its own)."""
    python = sys.executable
    specs = [
        ProcessSpec(
            copy_name("gateway", index),
            [python, "-m", "gateway", "serve"],
            {
                **env,
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(port),
                "BOOKING_URL": settings.upstream_urls,
            },
            health_url=f"http://127.0.0.1:{port}{HEALTH_PATH}",
        )
        for index, port in enumerate(settings.gateway_ports)
    ]
    for index, port in enumerate(settings.booking_ports):
        specs.append(
            ProcessSpec(
                booking_name(index),
                [python, "-m", "booking", "serve"],
                {**env, "BOOKING_HOST": "127.0.0.1", "BOOKING_PORT": str(port)},
                health_url=f"http://127.0.0.1:{port}{HEALTH_PATH}",
            )
        )
    taken = {*settings.gateway_ports, *settings.booking_ports}
    for copy in range(max(1, settings.worker_copies)):
        for index, worker in enumerate(worker_names):
            port = settings.metrics_base_port + copy * len(worker_names) + index
            if copy > 0 and (port in taken or not port_is_free(port)):
                port = spare_port(taken)
            taken.add(port)
            specs.append(
                ProcessSpec(
                    copy_name(worker, copy),
                    [python, "-m", "workers", worker],
                    {**env, "WORKER_METRICS_PORT": str(port)},
                )
            )
    return specs
