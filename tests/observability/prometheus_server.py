"""A real Prometheus (the `prometheus` binary, see observability/ensure-tools.sh) on a free
loopback port, scraping given targets every second with the project's alert rules loaded."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from stack.processes import free_port, stop_pid, wait_until
from tests.observability.promql import RULE_FILES

SCRAPE_INTERVAL = "1s"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def scrape_config(
    jobs: Mapping[str, Sequence[tuple[str, str]]], rule_files: Sequence[Path] = RULE_FILES
) -> dict[str, Any]:
    """jobs: job name -> [(host:port, service label)]; the same labels as prometheus.yml."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_timeout": SCRAPE_INTERVAL,
                "static_configs": [
                    {"targets": [target], "labels": {"service": service}}
                    for target, service in targets
                ],
            }
            for job, targets in jobs.items()
        ],
    }


class Prometheus:
    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError("no `prometheus` on PATH: run `make tools`")
        # A previous run's samples would answer queries for up to 5 minutes: start empty.
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.port = free_port()
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it touches nothing else
        )
        log.close()
        if not wait_until(self._ready, timeout=30, interval=0.2):
            self.stop()
            raise RuntimeError(f"prometheus did not start: {self.workdir / 'prometheus.log'}")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_pid(self.process.pid, process=self.process, group=True, grace_s=5)
        self.process = None


async def query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector; raises on a query Prometheus refuses."""
    answer = await client.get("/api/v1/query", params={"query": expr, "time": time.time()})
    body = answer.json()
    if body.get("status") != "success":
        raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return [{"value": result}]
    return list(result)
