"""`python -m workers NAME --check` and `--burst` on the real servers: the clients a worker needs
are opened (workers/resources.py), used and closed, and the process exits 0; a queue-release
without a signing secret is refused before it opens anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# It starts processes of its own.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _workers(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", ["seat-release", "reconciler", "queue-release"])
def test_check_opens_and_closes_what_the_worker_needs(
    name: str, service_env: dict[str, str], migrated_database: str
) -> None:
    done = _workers(name, "--check", env=service_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{name}: ok"


def test_burst_drains_then_exits(service_env: dict[str, str], migrated_database: str) -> None:
    done = _workers("seat-release", "--burst", env=service_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("seat-release: handled ")


def test_queue_release_without_a_secret_is_refused(
    service_env: dict[str, str], migrated_database: str
) -> None:
    env = {**service_env, "INTERNAL_SECRET": "short", "JWT_SECRET": "short"}
    done = _workers("queue-release", "--check", env=env)
    assert done.returncode != 0
    assert "needs INTERNAL_SECRET (32+ characters)" in done.stderr
