"""The job image's id on the engine, pulled when it is missing.

Cached for a few seconds: a burst of jobs asks the engine once, while a rebuilt image (same
tag, new id) is noticed soon after.
"""

from __future__ import annotations

import asyncio
import logging
import time

from docker.errors import ImageNotFound

from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, explain
from ci_controller.runtime import ImageMissingError, RuntimeFault

logger = logging.getLogger(__name__)

IMAGE_ID_TTL_SECONDS = 5.0
BUILD_IMAGE_HINT = (
    "build one with scripts/build-job-image and set CI_JOB_IMAGE=ci-python:3.11 "
    "(or point CI_JOB_IMAGE at any image with python and pip)"
)


class ImageIds:
    """Image ids of one engine, by reference, for a few seconds each."""

    def __init__(self, calls: EngineApi) -> None:
        self._api = calls
        self._image_ids: dict[str, tuple[float, str]] = {}

    async def ensure(self, image: str) -> str:
        """The id of `image`, pulling it if it is missing; `ImageMissingError` otherwise."""
        now = time.monotonic()
        cached = self._image_ids.get(image)
        if cached is not None and now - cached[0] < IMAGE_ID_TTL_SECONDS:
            return cached[1]
        image_id = await asyncio.to_thread(self._ensure, image)
        self._image_ids[image] = (now, image_id)
        return image_id

    def _ensure(self, image: str) -> str:
        try:
            return str(self._api.inspect_image(image)["Id"])
        except ImageNotFound:
            pass
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"cannot inspect the job image {image}: {exc}") from exc
        logger.info("job image %s is missing; trying to pull it", image)
        try:
            self._api.pull(image)
            return str(self._api.inspect_image(image)["Id"])
        except ENGINE_ERRORS as exc:
            raise ImageMissingError(
                f"the job image {image} is not on the Docker engine and cannot be pulled "
                f"({explain(exc)}); {BUILD_IMAGE_HINT}"
            ) from exc
