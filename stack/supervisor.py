"""`python -m stack run` (what `make run` calls): infra, setup steps, services, restarts, shutdown.

`Stack` is the reusable part: the end-to-end tests start the real processes with it against
their own infrastructure and ports.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from stack.infra import Endpoints, InfraHandle, start_infra
from stack.output import Console, LogSink, Output
from stack.processes import stop_pid
from stack.specs import (
    ProcessSpec,
    StackSettings,
    build_process_specs,
    list_workers,
    process_env,
    secrets_env,
    setup_specs,
)

STOP_GRACE_S = 8.0
RAPID_FAILURES = 3
RAPID_WINDOW_S = 30.0
_OPTIONAL_STEPS = {"seed-demo"}


class StackError(RuntimeError):
    pass


@dataclass
class _Managed:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    failures: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


class Stack:
    """Start infra (unless `endpoints` is given), run setup steps, start and supervise processes.

    `names` selects which of the standard processes run; `specs` replaces them altogether
    (stand-ins in tests). `start()` returns once every process with a health URL answers 200.
    """

    def __init__(
        self,
        run_dir: Path,
        env: Mapping[str, str],
        *,
        settings: StackSettings | None = None,
        endpoints: Endpoints | None = None,
        names: Sequence[str] | None = None,
        specs: Sequence[ProcessSpec] | None = None,
        run_setup: bool = True,
        console: TextIO | None = None,
        health_timeout_s: float = 60.0,
        restart_backoff_s: float = 0.5,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.env = dict(env)
        self.settings = settings or StackSettings.from_env(env)
        self.endpoints = endpoints
        self.names = list(names) if names is not None else None
        self.specs: list[ProcessSpec] = list(specs) if specs is not None else []
        self._given_specs = specs is not None
        self.run_setup = run_setup
        self.health_timeout_s = health_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self.output = Output(Console(console or sys.stdout), LogSink(self.run_dir / "logs"))
        self.exit_code = 0
        self._infra: InfraHandle | None = None
        self._managed: list[_Managed] = []
        self._stop_requested = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def say(self, text: str) -> None:
        self.output.line("stack", text)

    def start(self) -> None:
        """Bring everything up; on failure stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.endpoints is None:
            self._infra = start_infra(
                self.run_dir, self.env, database_name=self.settings.database_name, log=self.say
            )
            self.endpoints = self._infra.endpoints
        env = {**process_env(self.env, self.endpoints, self.settings)}
        env.update(secrets_env(self.run_dir, env))
        if self.run_setup:
            for step in setup_specs(self.settings, env):
                self._run_step(step)
        if not self._given_specs:
            workers = list_workers(env)
            if not workers:
                self.say("no workers listed by `python -m workers list`; starting none")
            self.specs = build_process_specs(self.settings, env, workers)
        if self.names is not None:
            self.specs = [spec for spec in self.specs if spec.name in self.names]
        self.output.console.widen([spec.name for spec in self.specs])
        with self._lock:
            for spec in self.specs:
                managed = _Managed(spec)
                self._spawn(managed)
                self._managed.append(managed)
        self._monitor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._monitor.start()
        self._wait_healthy()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def pids(self) -> dict[str, int]:
        """The PID of each running process by name (each leads its own process group)."""
        with self._lock:
            return {
                m.spec.name: m.process.pid
                for m in self._managed
                if m.process is not None and m.process.poll() is None
            }

    def wait(self) -> int:
        """Block until a stop is requested or a process keeps failing; the exit code."""
        while not self._stop_requested.wait(0.5):
            pass
        return self.exit_code

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL stragglers, stop the infra; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            managed = list(self._managed)
        self._stop_requested.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2.0)
        running = [m.process for m in managed if m.process and m.process.poll() is None]
        threads = [
            threading.Thread(
                target=stop_pid,
                args=(process.pid,),
                kwargs={"process": process, "grace_s": STOP_GRACE_S, "group": True},
            )
            for process in running
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for process in running:
            self.say(f"{_name_of(managed, process)} stopped (exit code {process.returncode})")
        for m in managed:
            if m.pump is not None:
                m.pump.join(timeout=2.0)
        if self._infra is not None:
            self._infra.stop()
        self.output.logs.close()

    def _spawn(self, managed: _Managed) -> None:
        spec = managed.spec
        process = subprocess.Popen(
            spec.argv,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops them in order
        )
        assert process.stdout is not None
        managed.process = process
        managed.pump = self.output.pump(spec.name, process.stdout)

    def _supervise(self) -> None:
        while not self._stop_requested.wait(0.1):
            with self._lock:
                if self._stopped:
                    return
                for managed in self._managed:
                    self._check(managed)

    def _check(self, managed: _Managed) -> None:
        now = time.monotonic()
        if managed.restart_at is not None:
            if now >= managed.restart_at:
                managed.restart_at = None
                self._spawn(managed)
            return
        process = managed.process
        if process is None or process.poll() is None:
            return
        if managed.pump is not None:
            managed.pump.join(timeout=1.0)  # its last lines before the exit notice
        failures = managed.failures
        failures.append(now)
        while failures and now - failures[0] > RAPID_WINDOW_S:
            failures.popleft()
        name = managed.spec.name
        if len(failures) > RAPID_FAILURES:
            self.say(
                f"{name} exited with code {process.returncode}, {len(failures)} times in "
                f"{RAPID_WINDOW_S:.0f} s: giving up, stopping everything"
            )
            self.exit_code = 1
            self._stop_requested.set()
            return
        delay = min(self.restart_backoff_s * 2 ** (len(failures) - 1), 5.0)
        self.say(f"{name} exited with code {process.returncode}; restarting in {delay:.1f} s")
        managed.restart_at = now + delay

    def _wait_healthy(self) -> None:
        pending = [spec for spec in self.specs if spec.health_url]
        deadline = time.monotonic() + self.health_timeout_s
        while pending:
            if self._stop_requested.is_set():
                raise StackError("stopped before the services became healthy")
            pending = [spec for spec in pending if not _answers_200(spec.health_url)]
            if pending and time.monotonic() > deadline:
                names = ", ".join(f"{s.name} ({s.health_url})" for s in pending)
                raise StackError(f"not healthy after {self.health_timeout_s:.0f} s: {names}")
            time.sleep(0.2)

    def _run_step(self, step: ProcessSpec) -> None:
        process = subprocess.Popen(
            step.argv,
            env=step.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while True:
            try:
                out, _ = process.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if self._stop_requested.is_set():
                    stop_pid(process.pid, process=process)
                    raise StackError(f"stopped during {step.name}") from None
        text = out.decode(errors="replace")
        if step.name in _OPTIONAL_STEPS and process.returncode != 0 and "No such command" in text:
            return
        for line in text.splitlines():
            self.output.line(step.name, line)
        if process.returncode != 0:
            raise StackError(f"{step.name} failed with exit code {process.returncode}")


def _answers_200(url: str | None) -> bool:
    if url is None:
        return True
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _name_of(managed: list[_Managed], process: subprocess.Popen[bytes]) -> str:
    return next((m.spec.name for m in managed if m.process is process), str(process.pid))


def run_stack(run_dir: Path, env: Mapping[str, str], console: TextIO | None = None) -> int:
    """The `make run` entrypoint: start everything, print the banner, supervise until a signal."""
    return supervise(Stack(run_dir, env, console=console), env)


def supervise(stack: Stack, env: Mapping[str, str]) -> int:
    """Run `stack` in the foreground until SIGINT/SIGTERM (exit 0) or a failure (exit 1)."""
    interrupted = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        interrupted.set()
        stack.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    _print_settings(stack, env)
    code = 0
    try:
        stack.start()
        _print_banner(stack)
        code = stack.wait()
    except StackError as error:
        if not interrupted.is_set():
            stack.say(f"error: {error}")
            code = 1
    except Exception as error:  # e.g. infra could not start: report it, clean up, exit 1
        stack.say(f"error: {type(error).__name__}: {error}")
        code = 1
    finally:
        stack.say("stopping")
        started = time.monotonic()
        stack.stop()
        stack.output.console.line("stack", f"stopped in {time.monotonic() - started:.1f} s")
    return code


def _print_settings(stack: Stack, env: Mapping[str, str]) -> None:
    s = stack.settings
    stack.say(
        f"settings: GATEWAY_PORT={s.gateway_port} BOOKING_PORT={s.booking_port} "
        f"HOLD_TTL_S={env.get('HOLD_TTL_S') or '600 (default)'} "
        f"RATE_LIMIT_PER_IP={env.get('RATE_LIMIT_PER_IP') or '(service default)'} "
        f"RATE_LIMIT_PER_USER={env.get('RATE_LIMIT_PER_USER') or '(service default)'}"
    )
    stack.say(f"admin account: {s.admin_email} / {s.admin_password}")


def _print_banner(stack: Stack) -> None:
    s = stack.settings
    lines = ["booking-rush is up"]
    for spec in stack.specs:
        if spec.health_url:
            base = spec.health_url.removesuffix("/health")
            lines.append(f"  {spec.name:<9} {base}   (health: {spec.health_url})")
    for spec in stack.specs:
        port = spec.env.get("WORKER_METRICS_PORT")
        if port:
            lines.append(f"  metrics   {spec.name}: http://127.0.0.1:{port}/metrics")
    lines += [
        f"  admin     {s.admin_email} / {s.admin_password}",
        f"  logs      {stack.logs_dir}/<name>.log",
        "  Ctrl-C to stop",
    ]
    for line in lines:
        stack.say(line)
