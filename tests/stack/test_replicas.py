"""GATEWAY_REPLICAS and WORKER_COPIES: distinct names and ports, all listed by the banner."""

from __future__ import annotations

import io
from pathlib import Path

from stack.foreground import print_banner
from stack.infra import Endpoints
from stack.managed import selected
from stack.specs import (
    ProcessSpec,
    StackSettings,
    build_process_specs,
    process_env,
    with_replica_ports,
)
from stack.supervisor import Stack

WORKERS = ["outbox-relay", "seat-release", "reconciler"]
NO_INFRA = Endpoints("redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/x", "127.0.0.1:1")


def two_of_everything() -> StackSettings:
    env = {"GATEWAY_REPLICAS": "2", "WORKER_COPIES": "2", "BOOKING_REPLICAS": "2"}
    return StackSettings.from_env(env)


def ports_of(specs: list[ProcessSpec], variable: str) -> list[int]:
    return [int(spec.env[variable]) for spec in specs if variable in spec.env]


def test_two_gateways_and_two_copies_of_each_worker_have_distinct_names_and_ports() -> None:
    settings = two_of_everything()
    env = process_env({}, NO_INFRA, settings)
    specs = build_process_specs(settings, env, WORKERS)
    names = [spec.name for spec in specs]
    assert names == [
        "gateway", "gateway-2", "booking", "booking-2",
        "outbox-relay", "seat-release", "reconciler",
        "outbox-relay-2", "seat-release-2", "reconciler-2",
    ]  # fmt: skip
    gateways = [spec for spec in specs if spec.name.startswith("gateway")]
    bookings = [spec for spec in specs if spec.name.startswith("booking")]
    workers = [spec for spec in specs if spec.argv[-2:-1] == ["workers"]]
    gateway_ports = [int(spec.env["GATEWAY_PORT"]) for spec in gateways]
    booking_ports = [int(spec.env["BOOKING_PORT"]) for spec in bookings]
    metrics_ports = [int(spec.env["WORKER_METRICS_PORT"]) for spec in workers]
    every_port = gateway_ports + booking_ports + metrics_ports
    assert len(every_port) == len(set(every_port)) == 2 + 2 + 6
    assert gateway_ports == [8080, 8083]  # 8081 and 8082 are the booking processes'
    assert metrics_ports[:3] == [9100, 9101, 9102]  # the first copies keep their ports
    # Every gateway fronts every booking process; its health URL is its own port.
    assert {spec.env["BOOKING_URL"] for spec in gateways} == {settings.upstream_urls}
    assert settings.upstream_urls.count(",") == 1
    assert [spec.health_url for spec in gateways] == [
        f"http://127.0.0.1:{port}/api/v1/health" for port in gateway_ports
    ]
    assert all(spec.argv[-1] in WORKERS for spec in workers)


def test_fixed_ports_skip_taken_ones_and_stay_distinct() -> None:
    settings = with_replica_ports(two_of_everything(), worker_count=len(WORKERS))
    specs = build_process_specs(settings, {}, WORKERS)
    ports = ports_of(specs, "GATEWAY_PORT") + ports_of(specs, "BOOKING_PORT")
    ports += ports_of(specs, "WORKER_METRICS_PORT")
    assert len(ports) == len(set(ports)) == 10
    assert settings.gateway_ports[0] == settings.gateway_port


def test_the_banner_lists_every_gateway_booking_process_and_worker_copy(tmp_path: Path) -> None:
    settings = two_of_everything()
    specs = build_process_specs(settings, {}, WORKERS)
    console = io.StringIO()
    stack = Stack(tmp_path, {}, settings=settings, endpoints=NO_INFRA, specs=specs, console=console)
    try:
        print_banner(stack)
    finally:
        stack.output.logs.close()
    out = console.getvalue()
    for port, name in ((8080, "gateway"), (8083, "gateway-2"), (8082, "booking-2")):
        assert f"{name:<9} http://127.0.0.1:{port}/api/v1" in out
    for name in ("outbox-relay", "reconciler-2", "seat-release-2"):
        assert f"metrics   {name}: http://127.0.0.1:" in out


def test_a_selected_name_selects_its_numbered_copies() -> None:
    assert selected("gateway-2", ["gateway"]) and selected("booking-3", ["booking"])
    assert selected("seat-release-2", ["seat-release"])
    assert selected("seat-release", ["seat-release"])
    assert not selected("seat-release", ["seat"]) and not selected("gateway-x", ["gateway"])
