"""The reconciler against the in-memory runtime: every transition and every divergence."""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import pytest
from controller_world import World, database_url_for
from fake_runtime import FakeContainer

from ci_common.errors import DatabaseUnavailableError
from ci_common.models import MAX_START_ATTEMPTS, Job, JobConclusion, JobId, JobStatus
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import (
    PROJECT_MISSING_EXIT,
    ROLE_DEPENDENCY_BUILD,
    ContainerState,
    JobContainerSpec,
    Sandbox,
)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Every reconciler test with a `world` runs on both backends."""
    return database_url_for(request, str(request.param))


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def passes(container: FakeContainer) -> None:
    container.emit(b"collected 1 item\n")
    container.emit(b"1 passed\n")
    container.exit(0)


async def test_a_passing_job_succeeds_with_its_output_and_leaves_nothing_behind(
    world: World,
) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    await world.reconciled()

    done = await world.job(job)
    assert (done.status, done.conclusion, done.exit_code) == (
        JobStatus.COMPLETED,
        JobConclusion.SUCCESS,
        0,
    )
    assert await world.test_output(job) == "collected 1 item\n1 passed\n"
    assert world.runtime.live() == []
    assert await world.repo.get_archive(job.id) is None


async def test_a_failing_job_records_pytests_exit_code(world: World) -> None:
    def fails(container: FakeContainer) -> None:
        container.emit(b"1 failed\n")
        container.exit(1)

    world.runtime.on_start = fails
    job = await world.submit()
    await world.reconciled()

    done = await world.job(job)
    assert (done.conclusion, done.exit_code, done.success) == (JobConclusion.FAILURE, 1, False)


@pytest.mark.parametrize(
    ("code", "flags", "last_line"),
    [
        (137, {"oom_killed": True}, "[ci] the tests ran out of memory (CI_JOB_MEMORY=64m)"),
        (
            1,
            {"oom_killed": True},
            "[ci] the kernel killed a process the tests started because it ran out of memory "
            "(CI_JOB_MEMORY=64m)",
        ),
        (
            1,
            {"disk_full": True},
            "[ci] the tests filled the space they may write to: /workspace, /tmp and /var/tmp "
            "hold at most 20m each (CI_JOB_DISK;",
        ),
        (1, {}, "1 failed\n"),
    ],
    ids=["tests-killed-for-memory", "child-killed-for-memory", "disk-full", "plain-failure"],
)
async def test_a_job_that_hit_a_limit_fails_with_pytests_code_and_a_note_saying_which(
    world: World, code: int, flags: dict[str, bool], last_line: str
) -> None:
    def ends(container: FakeContainer) -> None:
        container.emit(b"1 failed\n")
        container.exit(code, **flags)

    world.runtime.on_start = ends
    job = await world.submit()
    await world.reconciled(job_memory="64m", job_disk="20m")

    done = await world.job(job)
    assert (done.conclusion, done.exit_code, done.error) == (JobConclusion.FAILURE, code, None)
    log = await world.test_output(job)
    assert log.startswith("1 failed\n")
    assert log.splitlines(keepends=True)[-1].startswith(last_line)


async def test_the_container_gets_the_project_and_the_configured_limits(world: World) -> None:
    specs: list[tuple[JobContainerSpec, bytes]] = []

    def record(container: FakeContainer) -> None:
        assert container.spec is not None and container.project is not None
        specs.append((container.spec, container.project))
        passes(container)

    world.runtime.on_start = record
    job = await world.submit({"test_a.py": "def test_a(): pass\n"})
    await world.reconciled(
        job_network="none", job_memory="1g", job_cpus=0.5, job_pids=64, job_disk="20m"
    )

    [(spec, project)] = specs
    assert (spec.job_id, spec.image, spec.command) == (
        job.id,
        "ci-python:3.11",
        ("python", "-m", "pytest", "-p", "_ci_pytest_results", "-p", "_ci_junitxml"),
    )
    assert spec.sandbox == Sandbox(
        network="none",
        memory="1g",
        cpus=0.5,
        pids=64,
        disk=20 * 1024 * 1024,
        max_log_bytes=20 * 1024 * 1024,
    )
    with tarfile.open(fileobj=io.BytesIO(project)) as tar:
        members = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert members == {
        "workspace": (1000, 1000),
        "workspace/test_a.py": (1000, 1000),
        ".ci-plugins": (1000, 1000),
        ".ci-plugins/_ci_pytest_results.py": (1000, 1000),
        ".ci-plugins/_ci_junitxml.py": (1000, 1000),
        ".ci-output": (1000, 1000),
        ".ci-job.json": (1000, 1000),
        ".ci-ready": (1000, 1000),
    }


async def test_a_cancel_of_a_queued_job_means_it_never_starts(world: World) -> None:
    job = await world.submit()
    await world.server.request_cancel(job.id)
    await world.reconciled()

    assert world.runtime.containers == {}
    assert world.runtime.removed == []
    assert (await world.job(job)).conclusion is JobConclusion.CANCELLED


async def test_a_cancel_of_a_running_job_stops_its_container(world: World) -> None:
    world.runtime.on_start = lambda container: container.emit(b"running\n")
    job = await world.submit()
    controller = world.controller()
    await controller.reconcile()
    await world.runtime.started.wait()

    await world.server.request_cancel(job.id)
    await controller.react()
    await controller.wait_idle()

    done = await world.job(job)
    assert (done.conclusion, done.exit_code) == (JobConclusion.CANCELLED, None)
    assert len(world.runtime.stopped) == 1
    log = await world.test_output(job)
    assert log.startswith("running\n")
    assert log.endswith("[ci] cancelled on request\n")


async def test_a_cancel_requested_while_no_controller_ran_is_honoured_on_adoption(
    world: World,
) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    await world.server.request_cancel(job.id)

    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.CANCELLED
    assert world.runtime.stopped == [container.id]


async def test_a_cancel_of_a_completed_job_changes_nothing(world: World) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    controller = await world.reconciled()

    await world.server.request_cancel(job.id)
    await controller.react()
    await controller.wait_idle()

    done = await world.job(job)
    assert (done.conclusion, done.exit_code) == (JobConclusion.SUCCESS, 0)
    assert world.runtime.stopped == []


async def test_a_job_past_its_timeout_is_stopped_and_timed_out(world: World) -> None:
    job = await world.submit()
    await world.reconciled(job_timeout=0.2)

    done = await world.job(job)
    assert done.conclusion is JobConclusion.TIMED_OUT
    assert world.runtime.stopped
    assert "timed out after 0.2 s (CI_JOB_TIMEOUT)" in await world.log_text(job)


async def test_a_missing_job_image_ends_the_job_as_error_saying_how_to_build_one(
    world: World,
) -> None:
    world.runtime.images.clear()
    job = await world.submit()
    await world.reconciled()

    await world.assert_error_says(job, "build-job-image")


async def test_the_controller_log_says_why_a_job_ended_as_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.runtime.images.clear()
    job = await world.submit()
    controller = world.controller()

    with caplog.at_level("INFO", logger="ci_controller"):
        await controller.reconcile()
        await controller.wait_idle()

    error = (await world.job(job)).error
    assert error is not None
    [finished] = [r for r in caplog.records if "(exit code None)" in r.getMessage()]
    assert finished.getMessage() == f"job {job.id}: error (exit code None): {error}"
    assert any(
        r.levelname == "WARNING" and job.id in r.getMessage() and error in r.getMessage()
        for r in caplog.records
    )


async def test_a_project_without_requirements_runs_on_the_job_image(world: World) -> None:
    world.runtime.on_start = passes
    await world.submit()
    await world.reconciled()

    assert world.runtime.builds == []


async def test_dependencies_are_built_once_and_reused(world: World) -> None:
    world.runtime.on_start = passes
    files = {"requirements.txt": "attrs\n# a comment\n", "test_a.py": "def test_a(): pass\n"}
    first = await world.submit(files)
    controller = await world.reconciled()
    second = await world.submit({**files, "requirements.txt": "attrs  \n"})
    await controller.reconcile()
    await controller.wait_idle()

    assert len(world.runtime.builds) == 1
    assert (await world.job(first)).conclusion is JobConclusion.SUCCESS
    assert (await world.job(second)).conclusion is JobConclusion.SUCCESS
    first_log = await world.log_text(first)
    assert "[ci] dependencies from requirements.txt\n[ci] installing the dependencies" in first_log
    assert "Collecting things" in first_log
    assert "[ci] dependencies installed in " in first_log
    second_log = await world.log_text(second)
    assert "installing" not in second_log
    assert "[ci] dependencies: cached image ci-deps:" in second_log
    assert world.runtime.collected == [world.settings.max_dependency_images]


async def test_the_dependency_build_gets_the_job_limits_on_the_build_network(
    world: World,
) -> None:
    world.runtime.on_start = passes
    await world.submit({"requirements.txt": "attrs\n", "test_a.py": ""})
    await world.reconciled(
        job_network="none", job_memory="1g", job_cpus=0.5, job_pids=64, max_log_mb=1, job_disk="20m"
    )

    [spec] = world.runtime.build_specs
    assert (spec.base_image, dict(spec.files)) == (
        "ci-python:3.11",
        {"requirements.txt": b"attrs\n"},
    )
    assert spec.sandbox == Sandbox(
        network="isolated",
        memory="1g",
        cpus=0.5,
        pids=64,
        disk=20 * 1024 * 1024,
        max_log_bytes=1024 * 1024,
    )


@pytest.mark.parametrize(
    ("requirements", "builds"),
    [
        ("pytest\n", 0),
        ("PyTest==9.2.0\niniconfig\n", 0),
        ("pytest==8.0\n", 1),
        ("pytest>=7\n", 1),
        ("pytest\nattrs\n", 1),
    ],
)
async def test_requirements_the_job_image_satisfies_need_no_build(
    world: World, requirements: str, builds: int
) -> None:
    world.runtime.on_start = passes
    files = {"requirements.txt": requirements, "test_a.py": ""}
    controller = world.controller()
    for _ in range(2):
        await world.submit(files)
        await controller.reconcile()
        await controller.wait_idle()

    assert len(world.runtime.builds) == builds
    assert world.runtime.listings <= 1  # listed at most once per job image


async def test_when_the_job_image_cannot_be_listed_the_requirements_are_installed(
    world: World,
) -> None:
    world.runtime.on_start = passes
    world.runtime.listing_fails = True
    job = await world.submit({"requirements.txt": "pytest\n", "test_a.py": ""})
    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    assert len(world.runtime.builds) == 1


async def test_a_failing_pip_install_ends_the_job_as_error_with_pips_output(
    world: World,
) -> None:
    world.runtime.build_output = b"ERROR: No matching distribution found for nope\n"
    world.runtime.build_exit_code = 1
    job = await world.submit({"requirements.txt": "nope\n", "test_a.py": ""})
    await world.reconciled()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.ERROR
    assert done.error is not None and "requirements.txt" in done.error
    log = await world.log_text(job)
    assert "No matching distribution found for nope" in log
    assert log.rstrip().endswith(done.error)
    assert world.runtime.containers == {}


async def test_a_cancel_during_the_dependency_build_ends_the_job_cancelled(world: World) -> None:
    world.runtime.build_gate = asyncio.Event()
    job = await world.submit({"requirements.txt": "attrs\n", "test_a.py": ""})
    controller = world.controller()
    await controller.reconcile()
    await eventually(lambda: _true(bool(world.runtime.builds)))

    await world.server.request_cancel(job.id)
    await controller.react()
    await controller.wait_idle()

    assert (await world.job(job)).conclusion is JobConclusion.CANCELLED
    assert world.runtime.containers == {}


async def test_no_more_than_max_parallel_jobs_run_at_once(world: World) -> None:
    jobs = [await world.submit() for _ in range(3)]
    controller = world.controller(max_parallel_jobs=2)

    await controller.reconcile()
    await eventually(lambda: _true(len(world.runtime.containers) == 2))
    await controller.reconcile()
    assert len(world.runtime.containers) == 2
    assert (await world.job(jobs[2])).status is JobStatus.QUEUED

    world.runtime.container_of(jobs[0].id).exit(0)
    await eventually(lambda: _is_completed(world, jobs[0].id))
    await controller.reconcile()
    await eventually(  # started, not only created: an exit before the start would be undone
        lambda: _true(
            any(
                c.job_id == jobs[2].id and c.state is ContainerState.RUNNING
                for c in world.runtime.live()
            )
        )
    )
    for job in jobs[1:]:
        world.runtime.container_of(job.id).exit(0)
    await controller.wait_idle()
    assert [(await world.job(j)).conclusion for j in jobs] == [JobConclusion.SUCCESS] * 3


async def test_the_log_cap_stores_one_note_and_the_job_goes_on(world: World) -> None:
    def chatty(container: FakeContainer) -> None:
        for _ in range(40):
            container.emit(b"x" * 1023 + b"\n")
        container.exit(0)

    world.runtime.on_start = chatty
    job = await world.submit()
    controller = world.controller(max_log_mb=10 / 1024)  # 10 KiB

    await controller.reconcile()
    await controller.wait_idle()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.SUCCESS
    log = await world.log_text(job)
    assert log.count("x" * 1023) == 9  # and the log's first line, saying what was installed
    assert log.count("log truncated") == 1


async def test_a_running_job_is_adopted_and_its_log_continues_without_repeats(
    world: World,
) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    first = container.emit(b"line 1\n")
    second = container.emit(b"line 2\n", same_timestamp=True)
    await world.server.set_container(job.id, container.id)
    await world.server.append_log(job.id, "line 1\n", cursor=first.position.encode())
    assert first.position < second.position

    controller = world.controller()
    await controller.reconcile()
    container.emit(b"line 3\n")
    container.exit(0)
    await controller.wait_idle()

    assert await world.test_output(job) == "line 1\nline 2\nline 3\n"
    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS


async def test_a_container_that_exited_while_no_controller_ran_is_finalized(
    world: World,
) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    container.emit(b"1 failed\n")
    container.exit(1)

    await world.reconciled()

    done = await world.job(job)
    assert (done.conclusion, done.exit_code) == (JobConclusion.FAILURE, 1)
    assert await world.test_output(job) == "1 failed\n"
    assert world.runtime.live() == []


async def test_a_container_that_exited_after_the_deadline_keeps_its_exit_code(
    world: World,
) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    container.exit(0)

    controller = world.controller(job_timeout=0.001)
    await asyncio.sleep(0.01)
    await controller.reconcile()
    await controller.wait_idle()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS


async def test_a_job_completed_since_the_list_was_read_is_not_adopted_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.EXITED)
    container.exit(0)
    await world.server.set_container(job.id, container.id)
    stale = await world.repo.list_active_jobs()
    await world.server.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)

    async def stale_list() -> list[Job]:
        return stale

    monkeypatch.setattr(world.repo, "list_active_jobs", stale_list)
    await world.reconciled()

    assert world.runtime.followed == []  # no worker took it up
    assert container.id in world.runtime.removed  # an orphan now


async def test_a_running_job_whose_container_vanished_ends_as_error(world: World) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id="c-gone")

    await world.reconciled()

    await world.assert_error_says(job, "vanished")


async def test_a_running_job_that_never_got_a_container_is_dispatched_again(
    world: World,
) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)

    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS


async def test_a_created_but_unstarted_container_is_replaced_by_a_fresh_one(
    world: World,
) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.CREATED)

    await world.reconciled()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.SUCCESS
    assert container.id in world.runtime.removed
    assert done.container_id != container.id


async def test_a_container_whose_project_never_arrived_is_replaced_and_the_job_runs(
    world: World,
) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    container.emit(b"[ci] the project never reached the container\n")
    container.exit(PROJECT_MISSING_EXIT)

    await world.reconciled()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.SUCCESS
    assert done.attempts == 2
    assert done.container_id != container.id
    assert container.id in world.runtime.removed
    assert "starting the job again (attempt 2 of 3)" in await world.log_text(job)


async def test_a_started_container_still_waiting_for_its_project_gets_it(world: World) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)  # then the controller died

    await world.reconciled()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.SUCCESS
    assert done.container_id == container.id and done.attempts == 1
    assert container.project is not None


async def test_a_job_whose_starts_keep_being_cut_short_ends_as_error_after_three(
    world: World,
) -> None:
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    for _ in range(MAX_START_ATTEMPTS - 1):
        await world.server.restart_job(job.id)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    container.exit(PROJECT_MISSING_EXIT)

    await world.reconciled()

    done = await world.job(job)
    assert done.attempts == MAX_START_ATTEMPTS + 1
    await world.assert_error_says(job, f"could not be started in {MAX_START_ATTEMPTS} attempts")


async def test_a_job_left_without_a_container_counts_its_next_start(world: World) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)  # then the controller died

    await world.reconciled()

    done = await world.job(job)
    assert done.conclusion is JobConclusion.SUCCESS and done.attempts == 2


async def test_containers_without_a_live_job_are_removed(world: World) -> None:
    job = await world.submit()
    await world.server.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    leftover = world.runtime.add_container(job_id=job.id, state=ContainerState.EXITED)
    stranger = world.runtime.add_container(job_id="no-such-job", state=ContainerState.RUNNING)
    build = world.runtime.add_container(
        job_id=None, state=ContainerState.RUNNING, role=ROLE_DEPENDENCY_BUILD
    )

    await world.reconciled()

    assert set(world.runtime.removed) == {leftover.id, stranger.id, build.id}


async def test_the_loop_dispatches_a_new_job_without_waiting_for_the_tick(world: World) -> None:
    world.runtime.on_start = passes
    controller = world.controller(reconcile_interval=60)
    stop = asyncio.Event()
    loop = asyncio.create_task(controller.run(stop))
    await asyncio.sleep(0.05)  # let it finish its start-up reconcile

    submitted = time.monotonic()
    job = await world.submit()
    await asyncio.wait_for(world.runtime.started.wait(), timeout=2)
    latency = time.monotonic() - submitted
    await eventually(lambda: _is_completed(world, job.id))
    stop.set()
    await loop

    assert latency < 0.5


async def test_stopping_leaves_running_containers_for_the_next_controller(world: World) -> None:
    job = await world.submit()
    controller = world.controller()
    stop = asyncio.Event()
    loop = asyncio.create_task(controller.run(stop))
    await asyncio.wait_for(world.runtime.started.wait(), timeout=2)
    world.runtime.container_of(job.id).emit(b"before\n")
    await eventually(lambda: _has_log(world, job.id))

    stop.set()
    await loop
    container = world.runtime.container_of(job.id)
    assert container.state is ContainerState.RUNNING
    assert (await world.job(job)).status is JobStatus.RUNNING

    container.emit(b"after\n")
    container.exit(0)
    successor = world.controller()
    await successor.reconcile()
    await successor.wait_idle()
    assert await world.test_output(job) == "before\nafter\n"
    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS


async def _true(value: bool) -> bool:
    return value


async def _is_completed(world: World, job_id: str) -> bool:
    from ci_common.models import JobId

    return (await world.repo.get_job(JobId(job_id))).status is JobStatus.COMPLETED


async def _has_log(world: World, job_id: str) -> bool:
    from ci_common.models import JobId

    return (await world.repo.get_job(JobId(job_id))).last_log_seq > 0


def test_positions_order_by_timestamp_then_count() -> None:
    assert LogPosition(5, 2) < LogPosition(6, 1)
    assert LogPosition(5, 1) < LogPosition(5, 2)


pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


# The staged project: on disk only while a dispatch needs it.


def _staged(staging_root: Path) -> list[Path]:
    return list(staging_root.iterdir()) if staging_root.exists() else []


async def test_the_staged_project_is_removed_once_the_container_has_it(
    world: World, staging_root: Path
) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    await world.reconciled()

    assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
    assert _staged(staging_root) == []


async def test_an_upload_breaking_the_shared_rules_ends_as_error_and_leaves_no_files(
    world: World, staging_root: Path
) -> None:
    """Stored by an older server that let it through: the controller says what the server
    would have said, instead of failing deep in the engine."""
    job = await world.submit({"sub\\test_a.py": "", "test_ok.py": ""})
    await world.reconciled()

    await world.assert_error_says(job, "contains a backslash")
    assert world.runtime.containers == {}
    assert _staged(staging_root) == []


async def test_a_cancel_while_the_project_is_staged_removes_its_files(
    world: World, staging_root: Path
) -> None:
    world.runtime.build_gate = asyncio.Event()
    job = await world.submit({"requirements.txt": "attrs\n", "test_a.py": ""})
    controller = world.controller()
    await controller.reconcile()
    await eventually(lambda: _true(bool(world.runtime.builds)))
    [staged] = _staged(staging_root)
    assert (staged / "project.tar").stat().st_size > 0

    await world.server.request_cancel(job.id)
    await controller.react()
    await controller.wait_idle()

    assert (await world.job(job)).conclusion is JobConclusion.CANCELLED
    assert _staged(staging_root) == []


async def test_a_database_failure_while_starting_leaves_the_job_to_the_next_pass(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.runtime.on_start = passes
    job = await world.submit()
    real_copy = world.repo.copy_archive
    failures = [DatabaseUnavailableError("the database is unavailable (database is locked)")]

    async def copy_failing_once(job_id: JobId, into: BinaryIO) -> bool:
        if failures:
            raise failures.pop()
        return await real_copy(job_id, into)

    monkeypatch.setattr(world.repo, "copy_archive", copy_failing_once)
    controller = await world.reconciled()
    assert (await world.job(job)).status is JobStatus.RUNNING  # not failed for our fault

    await controller.reconcile()
    await controller.wait_idle()
    done = await world.job(job)
    assert done.conclusion is JobConclusion.SUCCESS and done.attempts == 2


async def test_pytest_is_added_and_said_when_neither_the_image_nor_the_project_has_it(
    world: World,
) -> None:
    world.runtime.on_start = passes
    world.runtime.installed = {"pip": "24.0"}  # a plain python image
    bare = await world.submit({"test_a.py": "def test_a(): pass\n"})
    declared = await world.submit({"requirements.txt": "pytest==8.3.0\n", "test_a.py": ""})
    await world.reconciled()

    files = sorted((dict(spec.files) for spec in world.runtime.build_specs), key=str)
    assert files == [
        {".ci-pytest.txt": b"pytest\n"},
        {"requirements.txt": b"pytest==8.3.0\n"},  # declared: not added
    ]
    note = "[ci] pytest: neither the project's dependencies nor the job image have it"
    assert note in await world.log_text(bare)
    assert note not in await world.log_text(declared)
    assert (await world.job(bare)).conclusion is JobConclusion.SUCCESS
