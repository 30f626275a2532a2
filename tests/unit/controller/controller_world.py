"""The world a reconciler unit test acts in: a database (two connections), the in-memory
runtime, settings and a user. Imported by the tests; the fixture lives in conftest."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from fake_runtime import FakeRuntime

from ci_common.job_options import JobOptions
from ci_common.models import Job, JobConclusion, User
from ci_common.python_versions import PythonRuntime
from ci_controller.controller import Controller
from ci_controller.metrics import ControllerMetrics
from ci_controller.settings import ControllerSettings
from ci_persistence import SqliteRepository


def project_zip(files: dict[str, str] | None = None) -> bytes:
    """A zip of a project: one passing test and an empty requirements.txt unless `files`
    says otherwise."""
    files = (
        files
        if files is not None
        else {"requirements.txt": "", "test_ok.py": "def test_ok():\n    assert True\n"}
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@dataclass
class World:
    """Everything a reconciler test touches."""

    settings: ControllerSettings
    runtime: FakeRuntime
    repo: SqliteRepository
    server: SqliteRepository
    user: User

    def controller(
        self,
        *,
        runtimes: Sequence[PythonRuntime] = (),
        metrics: ControllerMetrics | None = None,
        **overrides: object,
    ) -> Controller:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return Controller(settings, self.runtime, self.repo, runtimes=runtimes, metrics=metrics)

    async def reconciled(
        self, *, runtimes: Sequence[PythonRuntime] = (), **overrides: object
    ) -> Controller:
        """A new controller after one full reconcile, once every job it started has ended."""
        controller = self.controller(runtimes=runtimes, **overrides)
        await controller.reconcile()
        await controller.wait_idle()
        return controller

    async def submit(
        self,
        files: dict[str, str] | None = None,
        *,
        user: User | None = None,
        options: JobOptions | None = None,
    ) -> Job:
        return await self.server.create_job(
            user_id=(user or self.user).id, archive=project_zip(files), options=options
        )

    async def job(self, job: Job) -> Job:
        return await self.repo.get_job(job.id)

    async def assert_error_says(self, job: Job, text: str) -> None:
        """The job ended as `error`, and both its error message and its log say `text`."""
        done = await self.job(job)
        assert done.conclusion is JobConclusion.ERROR
        assert done.error is not None and text in done.error
        assert text in await self.log_text(job)

    async def log_text(self, job: Job) -> str:
        return "".join(chunk.data for chunk in await self.repo.read_logs(job.id))

    async def test_output(self, job: Job) -> str:
        """The log without the `[ci] dependencies...` line every job's log starts with."""
        lines = (await self.log_text(job)).splitlines(keepends=True)
        return "".join(line for line in lines if not line.startswith("[ci] dependencies"))


def database_url_for(request: pytest.FixtureRequest, backend: str) -> str | None:
    """None for SQLite (the test's own file); a fresh PostgreSQL database's URL otherwise."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return None
