"""The bench's ratios and issue 17's targets, from a run's phase rows."""

from __future__ import annotations

from typing import Any

from loadtests.bench_report import bar_checks


def _phases() -> dict[str, Any]:
    return {
        "a_reserve_gateway": {
            "rps": 3000,
            "p99_ms": 40,
            "non_2xx": 0,
            "socket_errors": 0,
            "cpu_us_per_request": {"gateway": 60, "booking": 200},
        },
        "c_bare_evalsha": {"rps": 6000, "p99_ms": 10, "cpu_us_per_request": {"bare": 100}},
        "e_sold_out_gateway": {"rps": 9000, "p99_ms": 20},
        "f_queue_join_gateway": {"rps": 3000, "p99_ms": 150},
    }


def test_cpu_ratios_are_against_the_bare_endpoint_of_the_same_run() -> None:
    checks = bar_checks(_phases())
    assert checks["cpu_gateway_over_bare"] == 0.6
    assert checks["cpu_booking_over_bare"] == 2.0
    assert checks["ratio_e_over_a"] == 3.0
    assert checks["ratio_f_over_a"] == 1.0


def test_each_target_is_met_or_not_with_its_value() -> None:
    targets = bar_checks(_phases())["targets"]
    assert targets["gateway CPU / bare CPU <= 0.5"] == {"value": 0.6, "met": False}
    assert targets["booking CPU / bare CPU <= 1.3"] == {"value": 2.0, "met": False}
    assert targets["(a)/(c) rps >= 0.5"] == {"value": 0.5, "met": True}
    assert targets["(a) p99 ms <= 50"] == {"value": 40, "met": True}
    assert targets["(e)/(a) rps >= 2.5"] == {"value": 3.0, "met": True}
    assert targets["(f)/(a) rps >= 1.5"] == {"value": 1.0, "met": False}
    assert targets["(f) p99 ms <= 100"] == {"value": 150, "met": False}


def test_a_target_whose_phase_was_not_run_is_not_measured() -> None:
    phases = _phases()
    del phases["f_queue_join_gateway"]
    targets = bar_checks(phases)["targets"]
    assert targets["(f)/(a) rps >= 1.5"]["met"] is None
    assert targets["(e)/(a) rps >= 2.5"]["met"] is True
