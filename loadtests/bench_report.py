"""The bench's printed table, its ratios and the performance bar of issue 7 (reported as
measured: a miss is a figure for the README, not a failed run)."""

from __future__ import annotations

from typing import Any

import click

BAR_RESERVE_RPS = 2000
BAR_RESERVE_P99_MS = 100
BAR_A_OVER_C = 0.30

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


def bar_checks(phases: dict[str, Any]) -> dict[str, Any]:
    """Ratios (a)/(c), (a)/(b), (e)/(a) and whether each part of the bar was met."""
    ratios = {
        "ratio_a_over_c": _ratio(phases, "a_reserve_gateway", "c_bare_evalsha"),
        "ratio_a_over_b": _ratio(phases, "a_reserve_gateway", "b_reserve_direct"),
        "ratio_e_over_a": _ratio(phases, "e_sold_out_gateway", "a_reserve_gateway"),
    }
    a = phases.get("a_reserve_gateway", {})
    bar = {
        f"reserve via gateway >= {BAR_RESERVE_RPS} rps": a.get("rps", 0) >= BAR_RESERVE_RPS,
        f"reserve via gateway p99 <= {BAR_RESERVE_P99_MS} ms": a.get("p99_ms", 1e9)
        <= BAR_RESERVE_P99_MS,
        "reserve via gateway without errors": a.get("non_2xx", 1) + a.get("socket_errors", 1) == 0,
        f"(a)/(c) >= {BAR_A_OVER_C}": (ratios["ratio_a_over_c"] or 0) >= BAR_A_OVER_C,
        "sold-out at least as fast as reserve": (ratios["ratio_e_over_a"] or 0) >= 1.0,
    }
    return {**ratios, "bar": bar}


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
    click.echo(
        f"load average before {results.get('load_average_before')}, "
        f"after {results.get('load_average_after')}; {results.get('elapsed_s')} s"
    )
