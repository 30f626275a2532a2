"""The Python versions this controller offers, found at start and published in the database.

`CI_JOB_IMAGE` is always offered, and is the default: the version a job gets when neither it
nor its project's `requires-python` says which. `CI_JOB_IMAGES`
(`3.11=ci-python:3.11,3.13=ci-python:3.13`) offers more; when it is set and `CI_JOB_IMAGE` is
not, its first image is the default. `CI_JOB_IMAGE`'s version is the one `CI_JOB_IMAGES` lists
it under, else the one found in it, so `CI_JOB_IMAGE` alone is a complete setting.

Each image is looked into for its exact Python (`ContainerRuntime.python_version`), which also
proves it runs: an image that is missing is left out with a warning (build it and restart the
controller), while an image whose Python is not the version it is listed under, or a default
image whose version `CI_JOB_IMAGES` gives to another image, stops the start (a wrong setting
would send every job of that version to the wrong Python).

The controller publishes the result in the database (`publish_runtimes`) before it runs any
job, so every server replica offers exactly these versions (`GET /runtimes`, a submit's
choice). The last controller to start publishes; one controller per database is the rule
(`singleton`).
"""

from __future__ import annotations

import asyncio
import logging

from ci_common.errors import CIError
from ci_common.python_versions import PythonRuntime, version_key
from ci_controller.runtime import ContainerRuntime, RuntimeFault
from ci_controller.settings import ControllerSettings

logger = logging.getLogger(__name__)


class JobImagesSettingError(CIError):
    """`CI_JOB_IMAGES` lists an image under a version its Python is not."""


async def discover_runtimes(
    settings: ControllerSettings, runtime: ContainerRuntime
) -> list[PythonRuntime]:
    """The versions to offer, oldest first, the default (`default_image`) flagged."""
    configured = settings.job_image_map
    default = default_image(settings)
    images = list(configured.items())
    if default not in configured.values():
        images.append(("", default))  # its version is the one found in it
    found = await asyncio.gather(*(_python(runtime, image) for _, image in images))
    runtimes: list[PythonRuntime] = []
    for (listed, image), python in zip(images, found, strict=True):
        if python is None:
            continue
        version = major_minor(python)
        if listed and version != listed:
            raise JobImagesSettingError(
                f"CI_JOB_IMAGES lists {image} as Python {listed}, but it has Python {python}; "
                f"list it as {version}={image} or build the right image "
                f"(scripts/build-job-image --python {listed})"
            )
        if not listed and version in configured:
            raise JobImagesSettingError(
                f"CI_JOB_IMAGE {image} has Python {python}, but CI_JOB_IMAGES gives {version} "
                f"to {configured[version]}; list {version}={image} there, or set CI_JOB_IMAGE "
                f"to {configured[version]}"
            )
        runtimes.append(
            PythonRuntime(version=version, python=python, image=image, default=image == default)
        )
    return sorted(runtimes, key=lambda runtime: version_key(runtime.version))


def default_image(settings: ControllerSettings) -> str:
    """The default version's image: `CI_JOB_IMAGE`, unless only `CI_JOB_IMAGES` is set (its
    first image then). The controller runs with it as its `job_image`."""
    configured = settings.job_image_map
    if configured and "job_image" not in settings.model_fields_set:
        return next(iter(configured.values()))
    return settings.job_image


def major_minor(python: str) -> str:
    """`3.13.5` -> `3.13`."""
    return ".".join(python.split(".")[:2])


async def _python(runtime: ContainerRuntime, image: str) -> str | None:
    try:
        await runtime.ensure_image(image)
        return await runtime.python_version(image)
    except RuntimeFault as exc:
        logger.warning("not offering %s: %s", image, exc)
        return None
