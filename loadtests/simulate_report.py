"""The report of `python -m loadtests.simulate`: the figures of a simulated drop, the phase
table (processes needed per phase) and the text both are printed as."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from loadtests.simulate_model import PG_KINDS, SATURATED, WINDOWS, Config, Station, Unit, unit_costs

if TYPE_CHECKING:
    from loadtests.simulate_drop import Drop


def _pct(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def drop_report(drop: Drop, last_join: float) -> dict[str, Any]:
    c = drop.c
    storm_end = max(c.join_window, last_join)
    windows = dict(zip(WINDOWS, [(0.0, storm_end), (storm_end, storm_end + 60.0)], strict=True))
    groups: dict[str, list[Station]] = {
        "gateway": drop.gateways,
        "booking": drop.bookings,
        "redis event shard": [drop.shards[0]],
        "redis other shards": drop.shards[1:],
        "postgres": [drop.postgres],
    }
    stations: dict[str, Any] = {}
    for name, members in groups.items():
        if not members:
            continue
        row: dict[str, Any] = {"processes": len(members), "servers_each": members[0].servers}
        for label, (start, stop) in windows.items():
            utils = [m.utilisation(start, stop) for m in members]
            offered = [m.offered_load(start, stop) for m in members]
            row[label] = {
                "utilisation_mean": round(sum(utils) / len(utils), 3),
                "utilisation_max": round(max(utils), 3),
                "offered_max": round(max(offered), 3),
            }
        peaks = [m.peak() for m in members]
        best = max(peaks)
        row["peak_1s_utilisation"] = round(best[0], 3)
        row["peak_at_s"] = best[1]
        busy: dict[str, float] = {}
        for m in members:
            for kind, seconds in m.by_kind.items():
                busy[kind] = busy.get(kind, 0.0) + seconds
        total = sum(busy.values()) or 1.0
        row["busy_share_by_kind"] = {
            k: round(v / total, 3) for k, v in sorted(busy.items(), key=lambda kv: -kv[1])
        }
        stations[name] = row
    shards = []
    for shard in drop.shards:
        peak_ops = max(shard.calls, default=0.0)
        shards.append(
            {
                "shard": shard.name,
                "peak_ops_per_s": round(peak_ops),
                "peak_1s_utilisation": round(shard.peak()[0], 3),
                "join_storm_utilisation": round(shard.utilisation(0.0, storm_end), 3),
            }
        )
    pg = {
        kind: {"commits": round(v[0]), "rows": round(v[1]), "outbox": round(v[2])}
        for kind, v in drop.pg_by_kind.items()
    }
    rates: dict[str, Any] = {}
    drop.per_second["stream"] = drop.per_second.get("join", {})  # opened right after
    for kind, (first, last) in drop.activity.items():
        count = drop.counts.get(kind, 0)
        unit = drop.u[kind]
        peak = max(drop.per_second.get(kind, {0: 0}).values())
        writes = kind in PG_KINDS
        rates[kind] = {
            "requests": count,
            "first_s": round(first, 1),
            "last_s": round(last, 1),
            "peak_per_s": peak,
            "pg_transactions_at_peak": round(peak * unit.commits) if writes else 0,
            "pg_rows_at_peak": round(peak * unit.rows) if writes else 0,
            "broker_messages_at_peak": round(peak * unit.outbox, 1) if writes else 0.0,
        }
    return {
        "config": asdict(c),
        "outcome": {
            "seats": c.seats,
            "sold": drop.sold,
            "held_at_end": drop.held,
            "available_at_end": drop.available,
            "admitted": drop.admitted,
            "passes_lapsed_unused": drop.passes_lapsed,
            "sold_out_at_s": None if drop.sold_out_at is None else round(drop.sold_out_at, 1),
            "ticks": drop.ticks,
            "position_events": drop.position_events,
            **{k: v for k, v in sorted(drop.counts.items())},
        },
        "latency_s": {
            **{kind: _summary(values) for kind, values in drop.latency.items() if values},
            "queue wait (join -> pass)": _summary(drop.queue_wait),
            "pass delivery (admitted -> pass)": _summary(drop.pass_delay),
            "refresh round (a process's waiting streams)": _summary(drop.round_seconds),
        },
        "stations": stations,
        "shards": shards,
        "rates": rates,
        "postgres_totals": pg,
        "saturates_first": first_saturation(groups),
    }


def first_saturation(groups: Mapping[str, list[Station]]) -> dict[str, Any] | None:
    """The first 1-s bucket in which a station is busy >= SATURATED or is offered more
    work than it can do; the station and what it was busy with overall."""
    found: tuple[int, float, str, Station] | None = None
    for name, members in groups.items():
        for m in members:
            for bucket in range(max(len(m.busy), len(m.offered))):
                busy = m.busy[bucket] / m.servers if bucket < len(m.busy) else 0.0
                offered = m.offered[bucket] / m.servers if bucket < len(m.offered) else 0.0
                if busy >= SATURATED or offered > 1.0:
                    if found is None or bucket < found[0]:
                        found = (bucket, max(busy, offered), name, m)
                    break
    if found is None:
        return None
    bucket, load, name, station = found
    total = sum(station.by_kind.values()) or 1.0
    top = max(station.by_kind.items(), key=lambda kv: kv[1])
    return {
        "station": name,
        "process": station.name,
        "at_s": bucket,
        "load_in_that_second": round(load, 3),
        "mostly": top[0],
        "mostly_share": round(top[1] / total, 3),
    }


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "n": len(values),
        "p50": r(_pct(values, 0.5)),
        "p95": r(_pct(values, 0.95)),
        "p99": r(_pct(values, 0.99)),
        "max": r(max(values, default=None)),
    }


TARGET = 0.7  # utilisation a process is planned for in the phase table


def phase_table(c: Config, costs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The capacity model without queueing: per phase, the work per second each kind of process
    gets at the phase's rate (measured µs x rate), and processes needed at TARGET utilisation.
    The event's shard cannot be split: its figure is a utilisation that must stay below 1."""
    u = {
        kind: unit if kind in PG_KINDS else Unit(**{**asdict(unit), "commits": 0.0, "rows": 0.0})
        for kind, unit in unit_costs(costs).items()
    }  # only reserve and pay write: the others' measured transactions are background reads
    stream = costs["kinds"]["stream"]["bytes_per_stream"]
    joins = c.buyers / c.join_window
    admits = c.release_per_tick / c.tick
    paying = 1 - c.leave_share - c.lapse_share
    # the event's shard also holds its share of users' keys, unless they live elsewhere
    spread_share = 0.0 if c.separate_spread and c.shards > 1 else 1 / max(c.shards, 1)

    def row(
        phase: str, rate: str, parts: Sequence[tuple[Unit, float]], note: str = ""
    ) -> dict[str, Any]:
        gw = sum(unit.gateway * n for unit, n in parts)
        bk = sum(unit.booking * n for unit, n in parts)
        ev = sum(unit.event_shard * n for unit, n in parts)
        sp = sum(unit.spread * n for unit, n in parts)
        calls = sum((unit.event_calls + unit.spread_calls * spread_share) * n for unit, n in parts)
        return {
            "phase": phase,
            "rate": rate,
            "gateway_cores": round(gw, 2),
            "gateways_needed": math.ceil(gw / TARGET),
            "booking_cores": round(bk, 2),
            "booking_needed": math.ceil(bk / TARGET),
            "event_shard_utilisation": round(ev + sp * spread_share, 2),
            "event_shard_calls_per_s": round(calls),
            "spread_redis_cores": round(sp, 2),
            "pg_transactions_per_s": round(sum(unit.commits * n for unit, n in parts)),
            "pg_rows_per_s": round(sum(unit.rows * n for unit, n in parts)),
            "broker_messages_per_s": round(sum(unit.outbox * n for unit, n in parts)),
            "note": note,
        }

    waiting = c.buyers * (1 - c.leave_share)
    memory = waiting * (stream["gateway"] + stream["booking"]) / 2**30
    return [
        row(
            "join storm",
            f"{joins:,.0f} joins/s + as many stream opens/s",
            [(u["join"], joins), (u["stream"], joins)],
        ),
        row(
            "waiting (position refresh)",
            f"{waiting:,.0f} open streams, one refresh each per admitting tick",
            [(u["refresh"], waiting / c.tick)],
            f"memory: {memory:,.1f} GiB of stream state (gateways + booking processes)",
        ),
        row("admission", f"{admits:,.0f} passes/s", [(u["pass"], admits)]),
        row("reserve", f"{admits:,.0f} reserves/s", [(u["reserve"], admits)]),
        row("payment", f"{admits * paying:,.0f} payments/s", [(u["pay"], admits * paying)]),
    ]


def render_phases(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        f"phase table (measured µs x rate; processes at {TARGET:.0%} utilisation; the event's "
        "shard is one Redis thread and cannot be split):",
        "| phase | rate | gateway cores (procs) | booking cores (procs) | event shard util | event "
        "shard calls/s | other Redis cores | PG transactions/s | PG rows/s | broker msgs/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['rate']} | {r['gateway_cores']} ({r['gateways_needed']}) | "
            f"{r['booking_cores']} ({r['booking_needed']}) | {r['event_shard_utilisation']} | "
            f"{r['event_shard_calls_per_s']:,} | {r['spread_redis_cores']} | "
            f"{r['pg_transactions_per_s']:,} | {r['pg_rows_per_s']:,} | "
            f"{r['broker_messages_per_s']:,} |"
        )
    notes = [r["note"] for r in rows if r["note"]]
    return "\n".join(lines + [f"({note})" for note in notes])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(result: Mapping[str, Any], units: Mapping[str, Unit]) -> str:
    c = result["config"]
    lines = [
        f"drop: {c['buyers']:,} buyers joining over {c['join_window']:.0f} s for {c['seats']:,} "
        f"seats; {c['gateways']} gateways, {c['booking']} booking processes, {c['shards']} Redis "
        f"shards, PostgreSQL {c['pg_cores']} cores; queue {c['release_per_tick']}/tick every "
        f"{c['tick']} s, max_concurrent {c['max_concurrent']}, pass_ttl {c['pass_ttl']:.0f} s; "
        f"seed {c['seed']} (costs measured {result.get('costs_measured_at')})",
        "",
        "unit costs (µs per request; refresh = per waiting stream per tick):",
        "| kind | gateway | booking | Redis event shard | Redis spread | PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, unit in units.items():
        lines.append(
            f"| {kind} | {unit.gateway * 1e6:.1f} | {unit.booking * 1e6:.1f} | "
            f"{unit.event_shard * 1e6:.1f} | {unit.spread * 1e6:.1f} | {unit.postgres * 1e6:.1f} |"
        )
    lines += ["", "outcome:"]
    lines += [f"  {k}: {_fmt(v)}" for k, v in result["outcome"].items()]
    lines += [
        "",
        "latency (s):",
        "| | n | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["latency_s"].items():
        lines.append(
            f"| {name} | {_fmt(s['n'])} | {_fmt(s['p50'])} | {_fmt(s['p95'])} | "
            f"{_fmt(s['p99'])} | {_fmt(s['max'])} |"
        )
    windows = list(WINDOWS)
    head = " | ".join(f"{w}: util mean / max (offered max)" for w in windows)
    lines += ["", "stations:", f"| station | n | {head} | peak 1 s (at s) | busy with |"]
    lines.append("|---|---:|" + "---|" * len(windows) + "---|---|")
    for name, row in result["stations"].items():
        cells = " | ".join(
            f"{row[w]['utilisation_mean']:.2f} / {row[w]['utilisation_max']:.2f} "
            f"({row[w]['offered_max']:.2f})"
            for w in windows
        )
        kinds = ", ".join(f"{k} {v:.0%}" for k, v in list(row["busy_share_by_kind"].items())[:4])
        lines.append(
            f"| {name} | {row['processes']} | {cells} | {row['peak_1s_utilisation']:.2f} "
            f"({row['peak_at_s']}) | {kinds} |"
        )
    lines += ["", "Redis shards:", "| shard | peak calls/s | peak 1 s util | join storm util |"]
    lines.append("|---|---:|---:|---:|")
    for s in result["shards"]:
        lines.append(
            f"| {s['shard']} | {s['peak_ops_per_s']:,} | {s['peak_1s_utilisation']:.2f} | "
            f"{s['join_storm_utilisation']:.2f} |"
        )
    lines += ["", "request rates (peak = busiest second) and what they write at that peak:"]
    lines.append(
        "| kind | requests | first s | last s | peak per s | PG transactions/s | PG rows/s "
        "| broker msgs/s |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, r in result["rates"].items():
        lines.append(
            f"| {kind} | {r['requests']:,} | {r['first_s']} | {r['last_s']} | "
            f"{r['peak_per_s']:,} | {r['pg_transactions_at_peak']:,} | {r['pg_rows_at_peak']:,} "
            f"| {r['broker_messages_at_peak']} |"
        )
    first = result["saturates_first"]
    lines.append("")
    if first is None:
        lines.append("saturates first: nothing reached saturation")
    else:
        lines.append(
            f"saturates first: {first['station']} ({first['process']}) at t = {first['at_s']} s "
            f"(load {first['load_in_that_second']:.2f} in that second); overall busiest with "
            f"{first['mostly']} ({first['mostly_share']:.0%} of its work)"
        )
    return "\n".join(lines)
