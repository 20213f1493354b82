"""The bench's printed table, its ratios, the performance bar of issue 7 and the targets of
issue 17 (reported as measured: a miss is a figure for the README, not a failed run)."""

from __future__ import annotations

from typing import Any

import click

BAR_RESERVE_RPS = 2000
BAR_RESERVE_P99_MS = 100
BAR_A_OVER_C = 0.30

A, C = "a_reserve_gateway", "c_bare_evalsha"
E, F = "e_sold_out_gateway", "f_queue_join_gateway"
# Issue 17: (name, ratio, comparison, target). CPU ratios are per request of (a) against the
# bare endpoint's per request of (c) in the same run, so the VM's speed cancels out.
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("gateway CPU / bare CPU", "cpu_gateway_over_bare", "<=", 0.5),
    ("booking CPU / bare CPU", "cpu_booking_over_bare", "<=", 1.3),
    ("(a)/(c) rps", "ratio_a_over_c", ">=", 0.50),
    ("(a) p99 ms", "p99_a_ms", "<=", 50),
    ("(e)/(a) rps", "ratio_e_over_a", ">=", 2.5),
    ("(f)/(a) rps", "ratio_f_over_a", ">=", 1.5),
    ("(f) p99 ms", "p99_f_ms", "<=", 100),
)

COLUMNS = (
    ("phase", 22),
    ("rps", 9),
    ("p50 ms", 9),
    ("p99 ms", 9),
    ("errors", 8),
    ("checks", 8),
)


def _ratio(phases: dict[str, Any], top: str, bottom: str) -> float | None:
    a, b = phases.get(top, {}).get("rps"), phases.get(bottom, {}).get("rps")
    return round(a / b, 2) if a and b else None


def _cpu_ratio(phases: dict[str, Any], process: str) -> float | None:
    top = phases.get(A, {}).get("cpu_us_per_request", {}).get(process)
    bare = phases.get(C, {}).get("cpu_us_per_request", {}).get("bare")
    return round(top / bare, 2) if top and bare else None


def target_checks(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 17's targets, each with the run's value and met (None: a phase it needs was not
    run)."""
    checks: dict[str, dict[str, Any]] = {}
    for name, key, comparison, target in TARGETS:
        value = figures.get(key)
        met = None if value is None else value <= target if comparison == "<=" else value >= target
        checks[f"{name} {comparison} {target}"] = {"value": value, "met": met}
    return checks


def bar_checks(phases: dict[str, Any]) -> dict[str, Any]:
    """The ratios, whether each part of issue 7's bar was met, and issue 17's targets."""
    ratios = {
        "ratio_a_over_c": _ratio(phases, A, C),
        "ratio_a_over_b": _ratio(phases, A, "b_reserve_direct"),
        "ratio_e_over_a": _ratio(phases, E, A),
        "ratio_f_over_a": _ratio(phases, F, A),
        "cpu_gateway_over_bare": _cpu_ratio(phases, "gateway"),
        "cpu_booking_over_bare": _cpu_ratio(phases, "booking"),
    }
    p99s = {
        "p99_a_ms": phases.get(A, {}).get("p99_ms"),
        "p99_f_ms": phases.get(F, {}).get("p99_ms"),
    }
    a = phases.get(A, {})
    bar = {
        f"reserve via gateway >= {BAR_RESERVE_RPS} rps": a.get("rps", 0) >= BAR_RESERVE_RPS,
        f"reserve via gateway p99 <= {BAR_RESERVE_P99_MS} ms": a.get("p99_ms", 1e9)
        <= BAR_RESERVE_P99_MS,
        "reserve via gateway without errors": a.get("non_2xx", 1) + a.get("socket_errors", 1) == 0,
        f"(a)/(c) >= {BAR_A_OVER_C}": (ratios["ratio_a_over_c"] or 0) >= BAR_A_OVER_C,
        "sold-out at least as fast as reserve": (ratios["ratio_e_over_a"] or 0) >= 1.0,
    }
    return {**ratios, "bar": bar, "targets": target_checks({**ratios, **p99s})}


def _errors(row: dict[str, Any]) -> int:
    return int(row.get("non_2xx", 0)) + int(row.get("socket_errors", 0))


def print_table(results: dict[str, Any]) -> None:
    click.echo("".join(f"{name:<{width}}" if i == 0 else f"{name:>{width}}"
                       for i, (name, width) in enumerate(COLUMNS)))  # fmt: skip
    for name, row in sorted(results["phases"].items()):
        if "skipped" in row:
            click.echo(f"{name:<22}skipped: {row['skipped']}")
            continue
        checks = "ok" if row.get("no_oversell") else "BROKEN"
        click.echo(
            f"{name:<22}{row['rps']:>9}{row['p50_ms']:>9}{row['p99_ms']:>9}"
            f"{_errors(row):>8}{checks:>8}"
        )
        for problem in row.get("problems", []):
            click.echo(f"    {problem}")
        if row.get("cpu_us_per_request"):
            split = ", ".join(f"{k} {v}" for k, v in row["cpu_us_per_request"].items())
            click.echo(f"    CPU us per request: {split}")
    for key, value in results.items():
        if key.startswith("ratio"):
            click.echo(f"{key}: {value}")
    for check, met in results.get("bar", {}).items():
        click.echo(f"bar: {check}: {'met' if met else 'NOT met'}")
    for check, state in results.get("targets", {}).items():
        met = state["met"]
        verdict = "not measured" if met is None else "met" if met else "NOT met"
        click.echo(f"target (issue 17): {check}: {state['value']}: {verdict}")
    click.echo(
        f"load average before {results.get('load_average_before')}, "
        f"after {results.get('load_average_after')}; {results.get('elapsed_s')} s"
    )
