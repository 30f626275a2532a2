"""A job's pytest arguments and environment reach its container, cold or warm, in the job
file beside the project, and the log says at its start what was asked."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.job_options import JobOptions
from ci_common.models import Job, JobConclusion, JobStatus
from ci_controller.bootstrap import job_file
from ci_controller.project import JOB_FILE, READY_MARKER

OPTIONS = JobOptions(pytest_args=("-k", "parse and not slow", "-x"), env={"FOO": "bar"})


class Passing:
    """`on_start`: the test passes; remembers each container started for a job."""

    def __init__(self) -> None:
        self.started: list[FakeContainer] = []

    def __call__(self, container: FakeContainer) -> None:
        self.started.append(container)
        container.emit(b"1 passed\n")
        container.exit(0)


def members(project: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(project)) as tar:
        return {
            member.name: (tar.extractfile(member) or io.BytesIO()).read()
            for member in tar.getmembers()
            if member.isfile()
        }


async def finished(world: World, job: Job) -> Job:
    deadline = time.monotonic() + 5
    while (done := await world.job(job)).status is not JobStatus.COMPLETED:
        assert time.monotonic() < deadline, "the job did not complete in time"
        await asyncio.sleep(0.01)
    return done


def assert_job_file(container: FakeContainer, job: Job) -> None:
    assert container.project is not None
    files = members(container.project)
    assert json.loads(files[JOB_FILE]) == {
        "pytest_args": ["-k", "parse and not slow", "-x"],
        "env": {"FOO": "bar", "CI": "true", "CI_JOB_ID": job.id},
        "artifacts": [],
        "artifact_bytes": 50 * 1024 * 1024,
    }
    with tarfile.open(fileobj=io.BytesIO(container.project)) as tar:
        assert tar.getnames()[-2:] == [JOB_FILE, READY_MARKER]  # complete once the marker is


async def test_a_cold_container_gets_the_job_file_and_the_log_says_what_was_asked(
    world: World,
) -> None:
    world.runtime.on_start = passing = Passing()
    job = await world.submit(options=OPTIONS)
    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    [container] = passing.started
    assert_job_file(container, job)
    assert await world.log_text(job) == (
        "[ci] pytest arguments: -k 'parse and not slow' -x\n"
        "[ci] environment: FOO (values not shown)\n"
        "[ci] dependencies: requirements.txt declares none\n"
        "1 passed\n"
    )


async def test_a_warm_container_gets_the_job_file_when_claimed(world: World) -> None:
    world.runtime.on_start = Passing()
    controller = world.controller(warm_containers=True)
    await controller.reconcile()
    deadline = time.monotonic() + 5
    while not world.runtime.warm():
        assert time.monotonic() < deadline, "no warm container was started"
        await asyncio.sleep(0.01)
    [warm] = world.runtime.warm()

    job = await world.submit(options=OPTIONS)
    await controller.react()
    done = await finished(world, job)

    assert done.container_id == warm.id
    assert_job_file(warm, job)
    assert (await world.log_text(job)).startswith("[ci] pytest arguments: -k")
    await controller.shutdown()


async def test_a_job_without_options_still_gets_ci_and_its_id_and_no_notes(
    world: World,
) -> None:
    world.runtime.on_start = passing = Passing()
    job = await world.submit()
    await world.reconciled()

    [container] = passing.started
    assert container.project is not None
    assert json.loads(members(container.project)[JOB_FILE]) == {
        "pytest_args": [],
        "env": {"CI": "true", "CI_JOB_ID": job.id},
        "artifacts": [],
        "artifact_bytes": 50 * 1024 * 1024,
    }
    assert await world.test_output(job) == "1 passed\n"


def test_the_job_file_sets_ci_and_the_job_id_over_anything_stored() -> None:
    stored = Job.model_validate(
        {
            "id": "j-1",
            "user_id": "user-1",
            "status": "running",
            "conclusion": None,
            "exit_code": None,
            "error": None,
            "created_at": "2026-01-01T00:00:00Z",
            "started_at": None,
            "finished_at": None,
            "cancel_requested": False,
            "container_id": None,
            "log_cursor": None,
            "log_bytes": 0,
            "last_log_seq": 0,
            "archive_bytes": 0,
            "env": {"CI": "false", "CI_JOB_ID": "forged"},  # stored by an older server
        }
    )
    assert json.loads(job_file(stored))["env"] == {"CI": "true", "CI_JOB_ID": "j-1"}


async def test_a_project_without_a_dependency_file_runs_as_is_and_the_log_says_so(
    world: World,
) -> None:
    world.runtime.on_start = passing = Passing()
    job = await world.submit({"test_a.py": "def test_a(): pass\n"})
    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    [container] = passing.started
    assert container.image == world.settings.job_image
    assert await world.log_text(job) == (
        "[ci] dependencies: no dependency file (requirements.txt, pyproject.toml, uv.lock, "
        "setup.py, setup.cfg): nothing installed, the tests run on the job image as is\n"
        "1 passed\n"
    )
