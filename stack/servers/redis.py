"""A throw-away local Redis: no persistence, loopback only."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from stack.probes import redis_answers
from stack.servers.base import LaunchPlan, LocalServer, ServerStartError, ensure_local_server

BINARIES = ("redis-server", "valkey-server")


def find_redis_server() -> Path:
    for binary in BINARIES:
        found = shutil.which(binary)
        if found:
            return Path(found)
    raise ServerStartError(
        "no redis-server (or valkey-server) on PATH: install redis-server or set REDIS_URL"
    )


def redis_version(binary: Path) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return "unknown"


def start_local_redis(server_dir: Path, preferred_port: int) -> LocalServer:
    binary = find_redis_server()
    version = redis_version(binary)

    def plan(port: int) -> LaunchPlan:
        argv = [
            str(binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(server_dir),
            "--daemonize", "no",
            # Keep the command line as launched: the next launcher recognises its server by it.
            "--set-proc-title", "no",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, version=version)

    return ensure_local_server(
        "redis",
        f"{binary.name} {version}",
        server_dir,
        preferred_port,
        answers=lambda port: redis_answers(f"redis://127.0.0.1:{port}/0", timeout=0.5),
        plan_for_port=plan,
    )
