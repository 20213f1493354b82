"""What the observability tests read: every panel query and alert rule in `observability/`, the
metric names they reference, and the metric names the processes really export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "observability"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((OBSERVABILITY / "prometheus").glob("*.yml"))

_PROJECT_METRIC = re.compile(r"\bbooking_rush_[a-z0-9_]+")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str


@dataclass(frozen=True)
class AlertRule:
    group: str
    name: str
    expr: str


def panel_queries() -> list[PanelQuery]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", ()):
                found.append(PanelQuery(board["title"], panel["title"], target["expr"]))
    return found


def alert_rules() -> list[AlertRule]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append(AlertRule(group["name"], rule["alert"], str(rule["expr"])))
    return found


def referenced_metrics(exprs: Iterable[str]) -> set[str]:
    """Every `booking_rush_*` series name the expressions mention."""
    return {name for expr in exprs for name in _PROJECT_METRIC.findall(expr)}


def exported_series_names(exposition: str) -> Iterator[str]:
    """The series names a /metrics text exposes, including families without samples yet
    (a labelled counter nobody incremented still counts as exported)."""
    for family in text_string_to_metric_families(exposition):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            yield family.name + suffix
        for sample in family.samples:
            yield sample.name


def unknown_metrics(exprs: Iterable[str], exported: set[str]) -> set[str]:
    return referenced_metrics(exprs) - exported
