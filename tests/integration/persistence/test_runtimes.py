"""The Python versions a controller publishes are what every other connection reads, on every
backend (see conftest)."""

from __future__ import annotations

from ci_common.job_options import JobOptions
from ci_common.python_versions import PythonRuntime
from ci_common.repository import Repository

from .conftest import OpenRepository

PY311 = PythonRuntime(version="3.11", python="3.11.2", image="ci-python:3.11", default=True)
PY313 = PythonRuntime(version="3.13", python="3.13.5", image="ci-python:3.13")
PY39 = PythonRuntime(version="3.9", python="3.9.18", image="old")


async def test_a_publish_replaces_the_versions_and_others_read_them(
    open_repo: OpenRepository,
) -> None:
    controller, server = await open_repo(), await open_repo()
    assert await server.list_runtimes() == []
    await controller.publish_runtimes([PY313, PY311, PY39])
    assert await server.list_runtimes() == [PY39, PY311, PY313]  # oldest first
    await controller.publish_runtimes([PY311])
    assert await server.list_runtimes() == [PY311]
    await controller.publish_runtimes([])
    assert await server.list_runtimes() == []


async def test_a_jobs_python_is_stored_with_it(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@x.org")
    job = await repo.create_job(user_id=user.id, archive=b"zip", options=JobOptions(python="3.13"))
    assert job.python == "3.13"
    assert (await repo.get_job(job.id)).python == "3.13"
