"""The supervisor with real child processes (stand-ins for the services it will run)."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stack.infra import Endpoints
from stack.processes import free_port, is_alive, port_is_free, wait_until
from stack.specs import (
    ProcessSpec,
    StackSettings,
    build_process_specs,
    process_env,
    secrets_env,
)
from stack.supervisor import Stack, StackError

HERE = Path(__file__).parent
STANDIN = str(HERE / "standin.py")
NO_INFRA = Endpoints("redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/x", "127.0.0.1:1")


def standin(name: str, port: int = 0, *extra: str, health: bool = True) -> ProcessSpec:
    env = {**os.environ, "STANDIN_MARKER": f"marker-{name}"}
    url = f"http://127.0.0.1:{port}/api/v1/health" if port and health else None
    return ProcessSpec(name, [sys.executable, STANDIN, name, str(port), *extra], env, url)


def make_stack(
    tmp_path: Path, specs: list[ProcessSpec], **options: object
) -> tuple[Stack, io.StringIO]:
    console = io.StringIO()
    stack = Stack(
        tmp_path / "run", {}, endpoints=NO_INFRA, specs=specs, run_setup=False,
        console=console, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    return stack, console


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    assert wait_until(check, timeout, 0.05)


def test_output_is_prefixed_and_logged_and_stop_ends_children(tmp_path: Path) -> None:
    web_port = free_port()
    stack, console = make_stack(tmp_path, [standin("web", web_port), standin("worker-one")])
    stack.start()
    try:
        eventually(lambda: "worker-one | worker-one ready" in console.getvalue())
        out = console.getvalue()
        assert "web        | web ready env_marker=marker-web" in out
        assert "worker-one | worker-one to stderr" in out
        assert "\033[" not in out  # no colour without a terminal
        pids = [int(line.split("pid=")[1]) for line in out.splitlines() if "starting pid=" in line]
        assert len(pids) == 2
    finally:
        stack.stop()
    assert not any(is_alive(pid) for pid in pids)
    assert port_is_free(web_port)
    web_log = (tmp_path / "run" / "logs" / "web.log").read_text()
    assert "web ready env_marker=marker-web" in web_log
    assert web_log.rstrip().endswith("web got SIGTERM, bye")
    assert "worker-one to stderr" in (tmp_path / "run" / "logs" / "worker-one.log").read_text()


def test_dying_child_is_restarted(tmp_path: Path) -> None:
    port = free_port()
    marker = tmp_path / "crashed-once"
    spec = standin("flaky", port, "--crash-once", str(marker), "--exit-code", "3", health=False)
    stack, console = make_stack(tmp_path, [spec], restart_backoff_s=0.1)
    stack.start()
    try:
        eventually(lambda: "flaky ready" in console.getvalue())
        out = console.getvalue()
        assert "flaky exited with code 3; restarting" in out
        assert out.count("flaky starting pid=") == 2
        assert not port_is_free(port)
    finally:
        stack.stop()
    assert port_is_free(port)


def test_repeated_failures_stop_everything_with_exit_code_1(tmp_path: Path) -> None:
    healthy_port = free_port()
    specs = [standin("healthy", healthy_port), standin("broken", 0, "--exit-code", "5")]
    stack, console = make_stack(tmp_path, specs, restart_backoff_s=0.01)
    stack.start()
    try:
        assert stack.wait() == 1
        assert "broken exited with code 5, 4 times" in console.getvalue()
    finally:
        stack.stop()
    assert port_is_free(healthy_port)


def test_unhealthy_process_fails_start(tmp_path: Path) -> None:
    never = ProcessSpec(
        "mute",
        [sys.executable, STANDIN, "mute", "0"],
        dict(os.environ),
        health_url=f"http://127.0.0.1:{free_port()}/api/v1/health",
    )
    stack, _ = make_stack(tmp_path, [never], health_timeout_s=1.0)
    try:
        with pytest.raises(StackError, match="not healthy"):
            stack.start()
    finally:
        stack.stop()


def test_sigterm_stops_supervisor_and_children_within_15_s(tmp_path: Path) -> None:
    port, pid_dir = free_port(), tmp_path / "pids"
    pid_dir.mkdir()
    out_path = tmp_path / "supervisor.out"
    with open(out_path, "wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, str(HERE / "run_standins.py"), str(tmp_path / "run"), str(port),
             str(pid_dir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        eventually(lambda: "Ctrl-C to stop" in out_path.read_text(), timeout=30)
        child_pids = [int(p.read_text()) for p in pid_dir.iterdir()]
        assert len(child_pids) == 2 and all(is_alive(pid) for pid in child_pids)

        started = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=15) == 0
        assert time.monotonic() - started < 15
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    assert not any(is_alive(pid) for pid in child_pids)
    assert port_is_free(port)
    assert "web got SIGTERM, bye" in out_path.read_text()


def test_process_specs_for_the_real_services() -> None:
    settings = StackSettings.from_env({"GATEWAY_PORT": "18080", "BOOKING_PORT": "18081"})
    env = process_env({"HOLD_TTL_S": "30"}, NO_INFRA, settings)
    specs = build_process_specs(settings, env, ["queue-release", "seat-release"])
    by_name = {spec.name: spec for spec in specs}
    assert list(by_name) == ["gateway", "booking", "queue-release", "seat-release"]
    assert by_name["gateway"].argv[1:] == ["-m", "gateway", "serve"]
    assert by_name["gateway"].env["BOOKING_URL"] == "http://127.0.0.1:18081"
    assert by_name["gateway"].health_url == "http://127.0.0.1:18080/api/v1/health"
    assert by_name["booking"].env["BOOKING_PORT"] == "18081"
    assert by_name["seat-release"].argv[1:] == ["-m", "workers", "seat-release"]
    assert by_name["queue-release"].env["WORKER_METRICS_PORT"] == "9100"
    assert by_name["seat-release"].env["WORKER_METRICS_PORT"] == "9101"
    assert all(spec.env["HOLD_TTL_S"] == "30" for spec in specs)
    assert all(spec.env["REDIS_URL"] == NO_INFRA.redis_url for spec in specs)


def test_generated_secrets_are_kept_private_and_stable(tmp_path: Path) -> None:
    first = secrets_env(tmp_path, {})
    assert len(first["JWT_SECRET"]) >= 32 and first["INTERNAL_SECRET"] != first["JWT_SECRET"]
    assert secrets_env(tmp_path, {}) == first
    assert stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode) == 0o600
    assert "JWT_SECRET" not in secrets_env(tmp_path, {"JWT_SECRET": "x" * 40})
    assert "JWT_SECRET" not in secrets_env(tmp_path, {"JWT_ALGORITHM": "RS256"})
