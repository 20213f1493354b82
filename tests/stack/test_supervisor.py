"""The supervisor with real child processes (stand-ins for the services it will run)."""

from __future__ import annotations

import io
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stack.backoff import Backoff
from stack.infra import Endpoints
from stack.managed import StackError
from stack.processes import free_port, is_alive, port_is_free, wait_until
from stack.specs import (
    ProcessSpec,
    StackSettings,
    build_process_specs,
    process_env,
    secrets_env,
    with_replica_ports,
)
from stack.supervisor import Stack

# It starts processes of its own.
pytestmark = pytest.mark.e2e

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
        assert "flaky exited with code 3 after " in out
        assert "restarting in 0.1 s" in out
        assert "flaky restarted (pid " in out
        assert out.count("flaky starting pid=") == 2
        assert stack.process_restarts("flaky") == 1
        assert not port_is_free(port)
    finally:
        stack.stop()
    assert port_is_free(port)


def test_repeated_failures_back_off_and_the_rest_keeps_running(tmp_path: Path) -> None:
    healthy_port = free_port()
    specs = [standin("healthy", healthy_port), standin("broken", 0, "--exit-code", "5")]
    stack, console = make_stack(tmp_path, specs, restart_backoff_s=0.05, restart_backoff_max_s=0.2)
    stack.start()
    try:
        healthy_pid = stack.pids()["healthy"]
        eventually(lambda: stack.process_restarts("broken") >= 5, timeout=20)
        out = console.getvalue()
        delays = [
            line.rsplit("restarting in ", 1)[1]
            for line in out.splitlines()
            if line.startswith("stack") and "broken exited with code 5" in line
        ]
        assert delays[:5] == ["0.1 s", "0.1 s", "0.2 s", "0.2 s", "0.2 s"]  # 0.05, 0.1, 0.2 cap
        assert "giving up" not in out
        assert not stack._stop_requested.is_set()
        assert stack.pids()["healthy"] == healthy_pid
        assert stack.process_restarts("healthy") == 0
        assert not port_is_free(healthy_port)
    finally:
        stack.stop()
    assert stack.exit_code == 0
    assert port_is_free(healthy_port)


def test_backoff_doubles_caps_and_resets_after_uptime() -> None:
    backoff = Backoff(base_s=0.5, max_s=10.0, reset_after_s=30.0)
    assert [backoff.next_delay(1.0) for _ in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff.next_delay(31.0) == 0.5
    assert backoff.next_delay(2.0) == 1.0


def test_stop_report_times_each_process_and_flags_sigterm_ignored(tmp_path: Path) -> None:
    specs = [standin("polite", 0), standin("stubborn", 0, "--ignore-term")]
    stack, console = make_stack(tmp_path, specs, stop_grace_s=1.0)
    stack.start()
    eventually(lambda: console.getvalue().count(" ready env_marker=") == 2)
    pids = stack.pids()
    started = time.monotonic()
    stack.stop()
    assert time.monotonic() - started < 8
    report = stack.stop_report
    assert set(report) == {"polite", "stubborn"}
    assert not report["polite"].killed and report["polite"].exit_code == 0
    assert report["polite"].seconds < 1.0
    assert report["stubborn"].killed and report["stubborn"].ignored_sigterm
    assert report["stubborn"].exit_code == -signal.SIGKILL
    assert 1.0 <= report["stubborn"].seconds < 5.0
    assert not any(is_alive(pid) for pid in pids.values())
    assert "stubborn stopped in 1." in console.getvalue()
    assert "SIGKILLed: it ignored SIGTERM" in console.getvalue()


def test_copies_kill_and_restart_hooks(tmp_path: Path) -> None:
    worker = standin("worker", 0)
    worker.env["WORKER_METRICS_PORT"] = "9999"
    web_port = free_port()
    stack, console = make_stack(
        tmp_path, [worker, standin("web", web_port)], restart_backoff_s=0.05
    )
    stack.start()
    try:
        copy = stack.start_copy("worker")
        assert copy == "worker#2"
        assert stack.start_copy("worker") == "worker#3"
        eventually(lambda: {"worker", "worker#2", "worker#3", "web"} <= set(stack.pids()))
        copy_env = stack._find(copy).spec.env
        assert copy_env["WORKER_METRICS_PORT"] not in ("9999", "")
        assert copy_env["STANDIN_MARKER"] == "marker-worker"
        with pytest.raises(ValueError):
            stack.start_copy("web")  # serves a fixed port
        with pytest.raises(KeyError):
            stack.start_copy("nope")

        # A copy is supervised like the others: killed, it comes back.
        old = stack.pids()[copy]
        assert stack.kill_process(copy) == old
        eventually(lambda: stack.pids().get(copy, old) != old)
        assert stack.process_restarts(copy) == 1

        copy_pid = stack.pids()[copy]
        copy_log = tmp_path / "run" / "logs" / "worker#2.log"

        def restarted_copy_ready() -> bool:  # its SIGTERM handler is installed
            text = copy_log.read_text() if copy_log.exists() else ""
            tail = text.rsplit("starting pid=", 1)[-1]
            return tail.startswith(str(copy_pid)) and "worker ready" in tail

        eventually(restarted_copy_ready)
        result = stack.stop_copy(copy)
        assert not result.killed and result.exit_code == 0
        assert stack.stop_report[copy] == result
        assert not is_alive(copy_pid)
        assert copy not in stack.pids()
        time.sleep(0.3)  # the supervisor does not bring a stopped copy back
        assert copy not in stack.pids()
        with pytest.raises(ValueError):
            stack.stop_copy("worker")  # not a copy
    finally:
        stack.stop()
    assert set(stack.stop_report) == {"worker", "worker#2", "worker#3", "web"}
    assert "worker#3  | worker starting pid=" in console.getvalue()


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
    assert settings.booking_replicas == 2
    env = process_env({"HOLD_TTL_S": "30"}, NO_INFRA, settings)
    specs = build_process_specs(settings, env, ["queue-release", "seat-release"])
    by_name = {spec.name: spec for spec in specs}
    assert list(by_name) == ["gateway", "booking", "booking-2", "queue-release", "seat-release"]
    assert by_name["gateway"].argv[1:] == ["-m", "gateway", "serve"]
    upstreams = "http://127.0.0.1:18081,http://127.0.0.1:18082"
    assert by_name["gateway"].env["BOOKING_URL"] == upstreams
    assert by_name["gateway"].health_url == "http://127.0.0.1:18080/api/v1/health"
    assert by_name["booking"].env["BOOKING_PORT"] == "18081"
    assert by_name["booking-2"].env["BOOKING_PORT"] == "18082"
    assert by_name["booking-2"].argv[1:] == ["-m", "booking", "serve"]
    assert by_name["booking-2"].health_url == "http://127.0.0.1:18082/api/v1/health"
    webhook = "http://127.0.0.1:18080/api/v1/payments/webhook"
    assert all(spec.env["PAYMENT_WEBHOOK_URL"] == webhook for spec in specs)
    assert by_name["seat-release"].argv[1:] == ["-m", "workers", "seat-release"]
    assert by_name["queue-release"].env["WORKER_METRICS_PORT"] == "9100"
    assert by_name["seat-release"].env["WORKER_METRICS_PORT"] == "9101"
    assert all(spec.env["HOLD_TTL_S"] == "30" for spec in specs)
    assert all(spec.env["REDIS_URL"] == NO_INFRA.redis_url for spec in specs)


def test_replica_count_ports_and_a_configured_webhook_url() -> None:
    settings = StackSettings.from_env({"BOOKING_PORT": "18081", "BOOKING_REPLICAS": "3"})
    env = process_env({"PAYMENT_WEBHOOK_URL": "http://pay.example/hook"}, NO_INFRA, settings)
    specs = build_process_specs(settings, env, ["outbox-relay"])
    names = [spec.name for spec in specs]
    assert names == ["gateway", "booking", "booking-2", "booking-3", "outbox-relay"]
    assert [s.env["BOOKING_PORT"] for s in specs if s.name.startswith("booking")] == [
        "18081",
        "18082",
        "18083",
    ]
    assert all(spec.env["PAYMENT_WEBHOOK_URL"] == "http://pay.example/hook" for spec in specs)
    single = StackSettings.from_env({"BOOKING_REPLICAS": "1"})
    assert single.upstream_urls == "http://127.0.0.1:8081"
    with pytest.raises(ValueError):
        StackSettings.from_env({"BOOKING_REPLICAS": "0"})


def test_replica_ports_avoid_taken_and_reserved_ports() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        settings = StackSettings(
            gateway_port=taken + 2,
            booking_port=taken - 1,
            booking_replicas=4,
            metrics_base_port=taken + 3,
        )
        fixed = with_replica_ports(settings, worker_count=2)
    ports = fixed.booking_ports
    assert len(ports) == 4 and len(set(ports)) == 4
    assert ports[0] == taken - 1  # BOOKING_PORT itself is kept
    assert not {taken, taken + 2, taken + 3, taken + 4} & set(ports)
    assert fixed.upstream_urls.count(",") == 3


def test_generated_secrets_are_kept_private_and_stable(tmp_path: Path) -> None:
    first = secrets_env(tmp_path, {})
    assert len(first["JWT_SECRET"]) >= 32 and first["INTERNAL_SECRET"] != first["JWT_SECRET"]
    assert secrets_env(tmp_path, {}) == first
    assert stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode) == 0o600
    assert "JWT_SECRET" not in secrets_env(tmp_path, {"JWT_SECRET": "x" * 40})
    assert "JWT_SECRET" not in secrets_env(tmp_path, {"JWT_ALGORITHM": "RS256"})
