"""A local PostgreSQL cluster under `<run_dir>/postgres/`: trust auth, loopback, no fsync.

PostgreSQL refuses to run as root, so as root the data directory is handed to an unprivileged
system user (`postgres` when it exists) and the binaries run under it through `setpriv`.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from stack.probes import postgres_answers
from stack.servers.base import (
    LaunchPlan,
    LocalServer,
    ServerStartError,
    ensure_local_server,
    first_existing,
)

SERVICE_USER = "postgres"
FALLBACK_USER = "booking-rush"


def find_pg_bin_dir() -> Path:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    candidates += [Path(p) for p in versions]
    for directory in candidates:
        if first_existing([directory / "initdb"]) and first_existing([directory / "postgres"]):
            return directory
    raise ServerStartError(
        "no PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin: "
        "install postgresql or set DATABASE_URL"
    )


def start_local_postgres(server_dir: Path, preferred_port: int) -> LocalServer:
    bin_dir = find_pg_bin_dir()
    version = _server_version(bin_dir)
    server_dir.mkdir(parents=True, exist_ok=True)
    prefix = _privilege_drop(server_dir)
    data_dir = server_dir / "data"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    _init_cluster(bin_dir, data_dir, version, prefix, env)

    def plan(port: int) -> LaunchPlan:
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(data_dir),
            "-p", str(port),
            "-k", str(server_dir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=300",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, prefix=prefix, env=env, version=version)

    return ensure_local_server(
        "postgres",
        f"postgres {version}",
        server_dir,
        preferred_port,
        answers=lambda port: postgres_answers(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=0.5
        ),
        plan_for_port=plan,
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients to disconnect.
        stop_signal=signal.SIGINT,
    )


def _server_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [bin_dir / "postgres", "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\S+)", out)
    return match.group(1) if match else "unknown"


def _init_cluster(
    bin_dir: Path, data_dir: Path, version: str, prefix: list[str], env: dict[str, str]
) -> None:
    version_file = data_dir / "PG_VERSION"
    if version_file.exists():
        if version_file.read_text().strip() == version.split(".")[0]:
            return
        shutil.rmtree(data_dir)  # a dev cluster of another major version: start over
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a half-made cluster from an interrupted initdb
    argv = [
        *prefix,
        str(bin_dir / "initdb"),
        "-D", str(data_dir),
        "-U", "postgres",
        "--auth=trust",
        "-E", "UTF8",
        "--locale=C",
        "--no-sync",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ServerStartError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")


def _privilege_drop(server_dir: Path) -> list[str]:
    """Empty when not root; else a `setpriv` prefix for the service user owning `server_dir`."""
    if os.geteuid() != 0:
        return []
    user = _service_user()
    _require_traversable(server_dir, user)
    os.chown(server_dir, user.pw_uid, user.pw_gid)
    for path in server_dir.rglob("*"):
        if path.name not in ("server.json", "server.log", "start.lock", "users.lock"):
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]


def _service_user() -> pwd.struct_passwd:
    for name in (SERVICE_USER, FALLBACK_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell",
         "/usr/sbin/nologin", FALLBACK_USER],
        check=True, capture_output=True,
    )  # fmt: skip
    return pwd.getpwnam(FALLBACK_USER)


def _require_traversable(server_dir: Path, user: pwd.struct_passwd) -> None:
    for parent in server_dir.resolve().parents:
        mode = parent.stat()
        searchable = bool(mode.st_mode & stat.S_IXOTH) or (
            mode.st_uid == user.pw_uid and bool(mode.st_mode & stat.S_IXUSR)
        )
        if not searchable:
            raise ServerStartError(
                f"user {user.pw_name!r} cannot enter {parent} (mode {oct(mode.st_mode & 0o777)}); "
                f"PostgreSQL runs as that user: use a run directory it can reach"
            )
