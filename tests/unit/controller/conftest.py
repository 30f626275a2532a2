"""Fixtures for the reconciler's unit tests: a real SQLite file per test, the in-memory runtime,
and a controller wired to both. The `server` connection plays the server (a second writer,
so its commits move the controller's change counter)."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_runtime import FakeRuntime

from ci_common.models import Job, User
from ci_common.settings import Settings
from ci_controller.controller import Controller
from ci_persistence import SqliteRepository, open_repository


def project_zip(files: dict[str, str] | None = None) -> bytes:
    """A zip of a project: one passing test unless `files` says otherwise."""
    files = files if files is not None else {"test_ok.py": "def test_ok():\n    assert True\n"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@dataclass
class World:
    """Everything a reconciler test touches."""

    settings: Settings
    runtime: FakeRuntime
    repo: SqliteRepository
    server: SqliteRepository
    user: User

    def controller(self, **overrides: object) -> Controller:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return Controller(settings, self.runtime, self.repo)

    async def submit(self, files: dict[str, str] | None = None, *, user: User | None = None) -> Job:
        return await self.server.create_job(
            user_id=(user or self.user).id, archive=project_zip(files)
        )

    async def job(self, job: Job) -> Job:
        return await self.repo.get_job(job.id)

    async def log_text(self, job: Job) -> str:
        return "".join(chunk.data for chunk in await self.repo.read_logs(job.id))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
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
        }
    )
    user = await server.create_user(name="ada", email="ada@example.com")
    yield World(settings=settings, runtime=FakeRuntime(), repo=repo, server=server, user=user)
    await repo.close()
    await server.close()
