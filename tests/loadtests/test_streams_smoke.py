"""The streams measurement, small (50 streams), run the way it is run for real: a subprocess that
starts its own booking process on the session's servers, opens the streams, admits everyone and
writes its JSON. Every stream must open and get its pass, over one pub/sub connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from booking.pubsub import CLIENT_NAME
from stack.infra import Endpoints
from tests.live import REDIS_DBS
from tests.loadtests.conftest import ROOT

# It starts processes of its own.
pytestmark = pytest.mark.e2e

STREAMS = 50
REDIS_DB = REDIS_DBS["streams"]


def test_fifty_streams_all_get_their_pass(infra: Endpoints, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_URL": infra.redis_url,
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
    }
    command = [sys.executable, "-m", "loadtests.streams", "--streams", str(STREAMS)]
    command += ["--release-per-tick", "20", "--tick", "0.2", "--max-seconds", "60"]
    command += ["--database", "booking_rush_streams_test", "--redis-db", str(REDIS_DB)]
    command += ["--results-dir", str(tmp_path)]
    completed = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (written,) = tmp_path.glob("streams-*.json")
    result = json.loads(written.read_text())
    assert result["streams_opened"] == result["passes_received"] == STREAMS, result
    assert result["errors"] == 0 and not result["timed_out"], result
    assert result["streams_open_in_booking"] == STREAMS, result  # the service's own count
    assert result["pubsub_connections"] == 1, result
    assert result["pubsub_client_names"] == [CLIENT_NAME], result
    assert result["pubsub_channels"] >= STREAMS, result  # every user's channel, on that one
    assert result["ticks"] >= STREAMS // 20, result  # admitted 20 per tick, not all at once
    assert 0 < result["pass_delay_ms"]["p50"] <= result["pass_delay_ms"]["p99"] < 5000, result
    assert result["rss_mb_streams_open"] > 0 and result["cpu_s_release"] >= 0, result
