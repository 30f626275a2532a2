"""The controller's Python versions: found in its images at start, and each job run on the
image of the version stored with it, its dependencies built on that image, its log saying
which Python it is."""

from __future__ import annotations

import pytest
from controller_world import World
from fake_runtime import FakeContainer, FakeRuntime

from ci_common.job_options import JobOptions
from ci_common.models import JobConclusion
from ci_common.python_versions import PythonRuntime
from ci_controller.python_runtimes import (
    JobImagesSettingError,
    default_image,
    discover_runtimes,
)
from ci_controller.settings import ControllerSettings

PY311 = PythonRuntime(version="3.11", python="3.11.2", image="ci-python:3.11", default=True)
PY313 = PythonRuntime(version="3.13", python="3.13.5", image="ci-python:3.13")
BOTH = "3.11=ci-python:3.11,3.13=ci-python:3.13"


def settings(**values: object) -> ControllerSettings:
    return ControllerSettings.model_validate(
        {"job_image": "ci-python:3.11", "job_images": "", **values}
    )


def passing(container: FakeContainer) -> None:
    container.emit(b"1 passed\n")
    container.exit(0)


async def test_without_job_images_the_job_image_alone_is_offered_under_its_version() -> None:
    runtime = FakeRuntime()
    assert await discover_runtimes(settings(), runtime) == [PY311]


async def test_job_images_are_offered_with_their_exact_python_and_the_default_flagged() -> None:
    runtime = FakeRuntime(images={"ci-python:3.11", "ci-python:3.13"})
    assert await discover_runtimes(settings(job_images=BOTH), runtime) == [PY311, PY313]
    as_default = settings(job_images=BOTH, job_image="ci-python:3.13")
    assert [r.default for r in await discover_runtimes(as_default, runtime)] == [False, True]


async def test_job_image_is_offered_beside_the_job_images_under_the_version_found() -> None:
    runtime = FakeRuntime(images={"ci-python:3.11", "ci-python:3.13"})
    extra = settings(job_images="3.13=ci-python:3.13")
    assert await discover_runtimes(extra, runtime) == [PY311, PY313]


async def test_with_job_images_alone_the_first_listed_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI_JOB_IMAGE", raising=False)
    runtime = FakeRuntime(images={"ci-python:3.11", "ci-python:3.13"})
    listed = ControllerSettings.model_validate(
        {"job_images": "3.13=ci-python:3.13,3.11=ci-python:3.11"}
    )
    assert default_image(listed) == "ci-python:3.13"
    assert [(r.version, r.default) for r in await discover_runtimes(listed, runtime)] == [
        ("3.11", False),
        ("3.13", True),
    ]


async def test_a_missing_image_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    runtime = FakeRuntime(images={"ci-python:3.11"})
    assert await discover_runtimes(settings(job_images=BOTH), runtime) == [PY311]
    assert "not offering ci-python:3.13" in caplog.text


async def test_an_image_listed_under_the_wrong_version_stops_the_start() -> None:
    runtime = FakeRuntime(images={"ci-python:3.11", "ci-python:3.13"})
    with pytest.raises(JobImagesSettingError, match=r"lists ci-python:3\.11 as Python 3\.12"):
        await discover_runtimes(settings(job_images="3.12=ci-python:3.11"), runtime)
    with pytest.raises(JobImagesSettingError, match=r"gives 3\.11 to other:3\.11"):
        await discover_runtimes(settings(job_images="3.11=other:3.11"), runtime)


async def test_a_job_runs_on_its_versions_image_and_its_log_says_which_python(
    world: World,
) -> None:
    world.runtime.images.add("ci-python:3.13")
    images: dict[str | None, str] = {}

    def record(container: FakeContainer) -> None:
        images[container.job_id] = container.image
        passing(container)

    world.runtime.on_start = record
    newer = await world.submit(options=JobOptions(python="3.13"))
    default = await world.submit(options=JobOptions(python="3.11"))
    unnamed = await world.submit()
    await world.reconciled(runtimes=[PY311, PY313], max_parallel_jobs=3)

    for job, image, python in [
        (newer, "ci-python:3.13", "3.13.5"),
        (default, "ci-python:3.11", "3.11.2"),
        (unnamed, "ci-python:3.11", "3.11.2"),
    ]:
        assert (await world.job(job)).conclusion is JobConclusion.SUCCESS
        assert images[job.id] == image
        assert (await world.log_text(job)).startswith(f"[ci] Python {python} (image {image})\n")


async def test_dependencies_are_built_on_the_jobs_python(world: World) -> None:
    world.runtime.images.add("ci-python:3.13")
    world.runtime.on_start = passing
    files = {"requirements.txt": "attrs>=23\n", "test_ok.py": "def test_ok(): pass\n"}
    newer = await world.submit(files, options=JobOptions(python="3.13"))
    older = await world.submit(files, options=JobOptions(python="3.11"))
    await world.reconciled(runtimes=[PY311, PY313])

    assert sorted(spec.base_image for spec in world.runtime.build_specs) == [
        "ci-python:3.11",
        "ci-python:3.13",
    ]
    assert len(set(world.runtime.builds)) == 2  # one cache key per Python
    for job in (newer, older):
        assert (await world.job(job)).conclusion is JobConclusion.SUCCESS


async def test_a_version_the_controller_no_longer_offers_ends_the_job_saying_so(
    world: World,
) -> None:
    job = await world.submit(options=JobOptions(python="3.13"))
    await world.reconciled(runtimes=[PY311])
    await world.assert_error_says(job, "Python 3.13 is no longer offered by the controller")
