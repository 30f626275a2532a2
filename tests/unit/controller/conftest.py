"""Fixtures for the reconciler's unit tests: a real SQLite file per test, the in-memory runtime,
and a controller wired to both. The `server` connection plays the server (a second writer,
so its commits move the controller's change counter). A module runs its `world` tests on
PostgreSQL too by overriding `database_url` with one parametrized over both backends:

    @pytest.fixture(params=["sqlite", "postgres"])
    def database_url(request: pytest.FixtureRequest) -> str | None:
        return database_url_for(request, request.param)
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))  # after tests/e2e: never shadow its conftest

from controller_world import World, database_url_for
from fake_runtime import FakeRuntime

from ci_controller import project
from ci_controller.settings import ControllerSettings
from ci_persistence import DatabaseLocation, open_repository_at


@pytest.fixture
def staging_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory, so its staged projects can be looked at."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return project.staging_root()


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: SQLite in the test's directory; a fresh PostgreSQL database's URL when a module
    parametrizes this fixture with "postgres"."""
    return database_url_for(request, "sqlite")


@pytest.fixture
async def world(
    tmp_path: Path, staging_root: Path, database_url: str | None
) -> AsyncIterator[World]:
    db_path = tmp_path / "ci.db"
    location = DatabaseLocation(path=db_path, url=database_url)
    repo = await open_repository_at(location)
    server = await open_repository_at(location)
    settings = ControllerSettings.model_validate(
        {
            "db_path": db_path,
            "database_url": database_url,
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
