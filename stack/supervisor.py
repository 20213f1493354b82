"""`python -m stack run` (what `make run` calls): infra, setup steps, services, restarts, shutdown.

`Stack` is the reusable part: the end-to-end tests start the real processes with it against
their own infrastructure and ports. The foreground part (signals, banner) is stack/foreground.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from stack.backoff import BASE_S, MAX_S, RESET_AFTER_S, Backoff
from stack.infra import Endpoints, InfraHandle, start_infra
from stack.mail import mail_for
from stack.managed import (
    Managed,
    StackError,
    StopResult,
    answers_200,
    selected,
    stopped_line,
    terminate,
)
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
    spare_port,
    with_replica_ports,
)

STOP_GRACE_S = 10.0  # SIGTERM to SIGKILL: a process that needs the SIGKILL ignored SIGTERM
_OPTIONAL_STEPS = {"seed-demo"}


class Stack:
    """Start infra (unless `endpoints` is given), run setup steps, start and supervise processes.

    `names` selects which of the standard processes run (`booking` includes its replicas);
    `specs` replaces them altogether (stand-ins in tests). `start()` returns once every process
    with a health URL answers 200. A process that exits is restarted after an exponential
    backoff (`restart_backoff_s` doubling up to `restart_backoff_max_s`, forgiven after
    `restart_reset_after_s` of uptime); the servers the stack started are restarted the same way.
    `own_servers` starts local servers even when configured ones answer (chaos runs kill them).
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
        restart_backoff_s: float = BASE_S,
        restart_backoff_max_s: float = MAX_S,
        restart_reset_after_s: float = RESET_AFTER_S,
        stop_grace_s: float = STOP_GRACE_S,
        own_servers: bool = False,
    ) -> None:
        if own_servers and endpoints is not None:
            raise ValueError("own_servers starts the servers: give no endpoints")
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
        self.restart_backoff_max_s = restart_backoff_max_s
        self.restart_reset_after_s = restart_reset_after_s
        self.stop_grace_s = stop_grace_s
        self.own_servers = own_servers
        self.output = Output(Console(console or sys.stdout), LogSink(self.run_dir / "logs"))
        self.exit_code = 0
        self.stop_report: dict[str, StopResult] = {}
        self._infra: InfraHandle | None = None
        self._managed: list[Managed] = []
        self._copies: dict[str, int] = {}
        self.mail = mail_for(self.run_dir, self.env, start_sink=specs is None)  # SMTP_URL or a sink
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
                self.run_dir,
                self.env,
                database_name=self.settings.database_name,
                log=self.say,
                own_servers=self.own_servers,
            )
            self.endpoints = self._infra.endpoints
            self._infra.watch(log=self.say)
        workers: list[str] = []
        if not self._given_specs:
            workers = list_workers(self._process_env())
            if not workers:
                self.say("no workers listed by `python -m workers list`; starting none")
            self.settings = with_replica_ports(self.settings, len(workers))
        env = self._process_env()
        if self.run_setup:
            for step in setup_specs(self.settings, env):
                self._run_step(step)
        if not self._given_specs:
            self.specs = build_process_specs(self.settings, env, workers)
        if self.names is not None:
            self.specs = [spec for spec in self.specs if selected(spec.name, self.names)]
        self.specs = [*self.mail.specs, *self.specs]
        self.output.console.widen([spec.name for spec in self.specs])
        with self._lock:
            for spec in self.specs:
                managed = self._new_managed(spec)
                self._spawn(managed)
                self._managed.append(managed)
        self._monitor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._monitor.start()
        self._wait_healthy()

    def _process_env(self) -> dict[str, str]:
        assert self.endpoints is not None
        env = {**process_env(self.env, self.endpoints, self.settings), **self.mail.env}
        env.update(secrets_env(self.run_dir, env))
        return env

    def _new_managed(self, spec: ProcessSpec, copy_of: str | None = None) -> Managed:
        backoff = Backoff(
            self.restart_backoff_s, self.restart_backoff_max_s, self.restart_reset_after_s
        )
        return Managed(spec, backoff, copy_of)

    def request_stop(self) -> None:
        self._stop_requested.set()

    # -- what the chaos tool uses -------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """The PID of each running process by name (each leads its own process group)."""
        with self._lock:
            return {
                m.spec.name: m.process.pid
                for m in self._managed
                if m.process is not None and m.process.poll() is None
            }

    def process_restarts(self, name: str) -> int:
        """How many times the process `name` was restarted after it exited."""
        with self._lock:
            return self._find(name).restarts

    def kill_process(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send `sig` to the process group of `name` (it is then restarted like any crash);
        its pid, or None when it was not running."""
        with self._lock:
            process = self._find(name).process
            if process is None or process.poll() is not None:
                return None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            return process.pid

    def start_copy(self, name: str) -> str:
        """Start one more copy of the process `name` (a worker), supervised like the others;
        returns its name, `<name>#2`, `<name>#3`, ... A worker copy gets its own metrics port."""
        with self._lock:
            if self._stopped:
                raise StackError("the stack is stopped")
            original = self._find(name)
            if original.copy_of is not None:
                raise ValueError(f"{name} is itself a copy; copy {original.copy_of}")
            spec = original.spec
            if spec.health_url is not None:
                raise ValueError(f"{name} serves a fixed port: only workers can be copied")
            index = self._copies[name] = self._copies.get(name, 1) + 1
            copy_name = f"{name}#{index}"
            env = dict(spec.env)
            if env.get("WORKER_METRICS_PORT"):
                taken = {int(m.spec.env.get("WORKER_METRICS_PORT") or 0) for m in self._managed}
                env["WORKER_METRICS_PORT"] = str(
                    spare_port(taken | set(self.settings.booking_ports))
                )
            managed = self._new_managed(ProcessSpec(copy_name, list(spec.argv), env), copy_of=name)
            self.output.console.widen([copy_name])
            self._spawn(managed)
            self._managed.append(managed)
        assert managed.process is not None
        self.say(f"{copy_name} started (pid {managed.process.pid}), a copy of {name}")
        return copy_name

    def stop_copy(self, copy_name: str) -> StopResult:
        """SIGTERM a copy made by start_copy (SIGKILL after the grace period) and forget it;
        the result is also kept in `stop_report`."""
        with self._lock:
            managed = self._find(copy_name)
            if managed.copy_of is None:
                raise ValueError(f"{copy_name} is not a copy (stop_copy stops only copies)")
            self._managed.remove(managed)
        result = terminate(managed, self.stop_grace_s)
        self.stop_report[copy_name] = result
        self.say(stopped_line(copy_name, result))
        return result

    def server_pid(self, kind: str) -> int | None:
        """The pid of the `redis`, `postgres` or `kafka` server this stack started (while it
        runs); None for a server it did not start."""
        return self._infra.server_pid(kind) if self._infra is not None else None

    def kill_server(self, kind: str, *, wipe: bool = False) -> None:
        """SIGKILL a server this stack started; `wipe` deletes its persisted data once it is dead,
        before the supervisor restarts it (Redis comes back empty)."""
        if self._infra is None:
            raise KeyError(f"{kind}: this stack started no servers")
        self._infra.kill_server(kind, wipe=wipe)

    def server_restarts(self, kind: str) -> int:
        """How many times the supervisor restarted the `kind` server."""
        return self._infra.server_restarts(kind) if self._infra is not None else 0

    def _find(self, name: str) -> Managed:
        for managed in self._managed:
            if managed.spec.name == name:
                return managed
        raise KeyError(f"no process named {name!r}")

    # -- running and stopping -------------------------------------------------------------------

    def wait(self) -> int:
        """Block until a stop is requested; the exit code."""
        while not self._stop_requested.wait(0.5):
            pass
        return self.exit_code

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL stragglers after the grace period (each one's
        outcome in `stop_report`), stop the infra; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            managed = list(self._managed)
        self._stop_requested.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2.0)
        results: dict[str, StopResult] = {}

        def stop_one(m: Managed) -> None:
            results[m.spec.name] = terminate(m, self.stop_grace_s)

        running = [m for m in managed if m.process is not None and m.process.poll() is None]
        threads = [threading.Thread(target=stop_one, args=(m,)) for m in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for m in running:
            self.say(stopped_line(m.spec.name, results[m.spec.name]))
        self.stop_report.update(results)
        for m in managed:
            if m.pump is not None:
                m.pump.join(timeout=2.0)
        if self._infra is not None:
            self._infra.stop()
        self.output.logs.close()

    def _spawn(self, managed: Managed) -> None:
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
        managed.started_at = time.monotonic()
        managed.pump = self.output.pump(spec.name, process.stdout)

    def _supervise(self) -> None:
        while not self._stop_requested.wait(0.1):
            with self._lock:
                if self._stopped:
                    return
                for managed in self._managed:
                    try:
                        self._check(managed)
                    except Exception as error:  # e.g. fork failed: try again after a backoff
                        delay = managed.backoff.next_delay(0.0)
                        self.say(
                            f"{managed.spec.name}: restart failed ({type(error).__name__}: "
                            f"{error}); next try in {delay:.1f} s"
                        )
                        managed.restart_at = time.monotonic() + delay

    def _check(self, managed: Managed) -> None:
        now = time.monotonic()
        name = managed.spec.name
        if managed.restart_at is not None:
            if now >= managed.restart_at:
                managed.restart_at = None
                self._spawn(managed)
                managed.restarts += 1
                assert managed.process is not None
                self.say(
                    f"{name} restarted (pid {managed.process.pid}, restart #{managed.restarts})"
                )
            return
        process = managed.process
        if process is None or process.poll() is None:
            return
        if managed.pump is not None:
            managed.pump.join(timeout=1.0)  # its last lines before the exit notice
        uptime = now - managed.started_at
        delay = managed.backoff.next_delay(uptime)
        managed.last_exit_code = process.returncode
        self.say(
            f"{name} exited with code {process.returncode} after {uptime:.1f} s; "
            f"restarting in {delay:.1f} s"
        )
        managed.restart_at = now + delay

    def _wait_healthy(self) -> None:
        pending = [spec for spec in self.specs if spec.health_url]
        deadline = time.monotonic() + self.health_timeout_s
        while pending:
            if self._stop_requested.is_set():
                raise StackError("stopped before the services became healthy")
            pending = [spec for spec in pending if not answers_200(spec.health_url)]
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
