"""`python -m loadtests.simulate`: a discrete-event simulation of a ticket drop, driven by the
unit costs `loadtests/costs.py` measured on this machine (loadtests/costs.json). Stdlib only,
seeded, deterministic. docs/scaling.md explains the model and shows a run.

What is simulated (one event, its keys on ONE Redis shard because of the `{ev:<id>}` hash tag):
- stations: G gateway processes, P booking processes, S Redis shards (each one server: one
  core, one event loop / one Redis thread; shard 0 holds the event) and PostgreSQL (`--pg-cores`
  servers). A station serves first come, first served; a request visits gateway (rate limit on
  the user's spread shard) -> booking process -> the event's shard, each visit costing the
  measured CPU of that process for that request kind (service time = CPU µs: a saturated
  process is busy computing, which is what the measured CPU per request says).
- buyers: `--buyers` joins uniformly over `--join-window` s; each join opens its position
  stream (sticky on one gateway and one booking process); like the drop (loadtests/README.md),
  5 % leave the queue 0.2-2 s after opening it, 10 % let their hold lapse, 5 % pay and are
  declined; each wants 1-4 tickets.
- queue-release: every `--tick` s ONE `queue_admit` on the event's shard admits up to
  `--release-per-tick` while live passes < `--max-concurrent`; each pass goes back through the
  buyer's booking process and gateway (pass delivery); an unused pass lapses after `--pass-ttl`.
  A tick that admitted someone publishes one `progress`: every booking process then refreshes
  the positions of its waiting streams in batches of 500 (one `queue_look` on the event's
  shard per batch, one after the other, a new round only when the last one ended, as
  booking/queue/stream.py does), and the gateways relay the position events.
- buyers with a pass think (`--think-reserve`, exponential mean), reserve (GA: the hold is
  decided when the script runs on the shard), think (`--think-pay`) and pay; a decline frees the
  seats, a lapse frees them after `--hold-ttl`; no seat left and no hold live: sold out, every
  waiting stream gets `sold_out` (priced like a pass delivery) and ends.

Not simulated (see docs/scaling.md): client time-outs and retries, the saga's confirm and the
broker (reported as rates only), the 15 s resync of every stream, the growth of ZRANK cost with
the queue's size, cross-machine network time.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.simulate_drop import Drop
from loadtests.simulate_model import COSTS, Config, unit_costs
from loadtests.simulate_report import phase_table, render, render_phases


def simulate(config: Config, costs: Mapping[str, Any]) -> dict[str, Any]:
    result = Drop(config, unit_costs(costs)).run()
    result["costs_measured_at"] = costs.get("measured_at")
    result["phases"] = phase_table(config, costs)
    return result


def parse(argv: Sequence[str] | None = None) -> tuple[Config, Path, bool]:
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", help="off unless given")
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")
    parser.add_argument("--costs", type=Path, default=COSTS, help="costs.json to read")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = vars(parser.parse_args(argv))
    costs, as_json = args.pop("costs"), args.pop("json")
    return Config(**args), costs, as_json


def main(argv: Sequence[str] | None = None) -> None:
    config, costs_path, as_json = parse(argv)
    costs = json.loads(costs_path.read_text())
    result = simulate(config, costs)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, unit_costs(costs)))
        print()
        print(render_phases(result["phases"]))


if __name__ == "__main__":
    main()
