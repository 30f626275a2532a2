"""Fixtures for the reconciler's unit tests: a real SQLite file per test, the in-memory runtime,
and a controller wired to both. The `server` connection plays the server (a second writer,
so its commits move the controller's change counter)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))  # after tests/e2e: never shadow its conftest

from controller_world import World
from fake_runtime import FakeRuntime

from ci_common.settings import Settings
from ci_controller import project
from ci_persistence import open_repository


@pytest.fixture
def staging_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory, so its staged projects can be looked at."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return project.staging_root()


@pytest.fixture
async def world(tmp_path: Path, staging_root: Path) -> AsyncIterator[World]:
    db_path = tmp_path / "ci.db"
    repo = await open_repository(db_path)
    server = await open_repository(db_path)
    settings = Settings.model_validate(
        {
            "db_path": db_path,
            "job_image": "ci-python:3.11",
            "max_parallel_jobs": 2,
            "reconcile_interval": 0.2,
            "job_timeout": 30,
            "warm_containers": False,  # test_warm_pool.py turns it on
        }
    )
    user = await server.create_user(name="ada", email="ada@example.com")
    yield World(settings=settings, runtime=FakeRuntime(), repo=repo, server=server, user=user)
    await repo.close()
    await server.close()
