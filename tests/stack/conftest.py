"""Fixtures for the launcher tests: run directories PostgreSQL's service user can enter."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.infra import InfraHandle, start_infra
from stack.processes import free_port


def dead_env() -> dict[str, str]:
    """Addresses where nothing listens, so the launcher must start its own servers."""
    return {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/stack_test",
        "KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
    }


def free_ports() -> dict[str, int]:
    return {"redis": free_port(), "postgres": free_port(), "kafka": free_port()}


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is mode 0700, and PostgreSQL runs as another user.
    path = Path(tempfile.mkdtemp(prefix="booking-rush-stack-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def local_infra() -> Iterator[InfraHandle]:
    """All three servers started locally (every configured address is dead)."""
    path = Path(tempfile.mkdtemp(prefix="booking-rush-stack-"))
    os.chmod(path, 0o755)
    handle = start_infra(path, dead_env(), ports=free_ports(), log=lambda _line: None)
    try:
        yield handle
    finally:
        handle.stop()
        shutil.rmtree(path, ignore_errors=True)
