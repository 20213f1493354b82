"""Builds the Grafana dashboards (`dashboards/*.json`) from the panel lists in panels.py and
panels_backend.py.

Run `python observability/grafana/build_dashboards.py` after changing a panel; a test checks that
the JSON files match this script, and another runs every panel's query against a real Prometheus
that scraped the real processes. Queries use no Grafana variables (so they run as they are) and
fixed `[1m]` windows (scrapes every 1 s in tests, 5 s in docker-compose).

Labels every query may use: `job` (gateway, booking, workers) and `service` (the process:
gateway, booking-1, outbox-relay, ...), both set by the scrape configuration.
"""

import json
import sys
from pathlib import Path

# A script, not a package: the panel modules sit beside it (`python .../build_dashboards.py`
# puts this folder on the path; runpy.run_path, which the tests use, does not).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from panels import DASHBOARDS_DIR, DATASOURCE, DROP_OVERVIEW, QUEUE, Panel
from panels_backend import INFRASTRUCTURE, SAGA_KAFKA

DASHBOARDS = {
    "drop-overview": ("Drop overview", DROP_OVERVIEW),
    "queue": ("Queue", QUEUE),
    "saga-kafka": ("Saga & Kafka", SAGA_KAFKA),
    "infrastructure": ("Infrastructure", INFRASTRUCTURE),
}


def _panel_json(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, object]:
    targets = [
        {
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "refId": chr(ord("A") + index),
        }
        for index, query in enumerate(panel.queries)
    ]
    body: dict[str, object] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": (
            {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
            if panel.kind == "stat"
            else {"legend": {"displayMode": "list", "placement": "bottom"}}
        ),
    }
    body.update(panel.extra)
    return body


def dashboard(uid: str, title: str, panels: tuple[Panel, ...]) -> dict[str, object]:
    laid_out = []
    x = y = 0
    row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        width, height = (6, 4) if panel.kind == "stat" else (12, 8)
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(_panel_json(panel, panel_id, {"x": x, "y": y, "w": width, "h": height}))
        x += width
        row_height = max(row_height, height)
    return {
        "uid": f"booking-rush-{uid}",
        "title": f"booking-rush: {title}",
        "tags": ["booking-rush"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": laid_out,
    }


def rendered() -> dict[str, str]:
    """file name -> JSON text of every dashboard."""
    return {
        f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main() -> int:
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (DASHBOARDS_DIR / name).write_text(text)
        print(f"wrote {DASHBOARDS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
