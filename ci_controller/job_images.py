"""The image each job runs on, by the Python version stored with it.

The controller offers one job image per Python version (`CI_JOB_IMAGES`, else `CI_JOB_IMAGE`
alone), found and published at start (`python_runtimes`). A job's `python` was chosen by the
server among the published versions; here it becomes that version's image and the dependency
cache for that image. Each image has a cache of its own, so everything the cache decides (the
build's base image, the distributions the image already has) is about the job's image, and the
dependency key, which covers the base image's id, never mixes two Pythons. The warm container
is of the default image only (`warm_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ci_common.models import Job
from ci_common.python_versions import PythonRuntime, version_key
from ci_controller.background import Background
from ci_controller.dependencies import DependencyImageCache
from ci_controller.runtime import ContainerRuntime, RuntimeFault
from ci_controller.settings import ControllerSettings


@dataclass(frozen=True)
class JobImage:
    """Where one job runs: its image, the image's exact Python (None when the default image
    could not be looked into), and the dependency cache on top of it."""

    image: str
    python: str | None
    dependencies: DependencyImageCache


class JobImages:
    """The job image of every offered Python version; `settings.job_image` is the default."""

    def __init__(
        self,
        *,
        settings: ControllerSettings,
        runtimes: Sequence[PythonRuntime],
        runtime: ContainerRuntime,
        background: Background,
    ) -> None:
        self._settings = settings
        self._runtimes = {runtime.version: runtime for runtime in runtimes}
        self._caches: dict[str, DependencyImageCache] = {}
        self._runtime = runtime
        self._background = background
        self.default = self._image(settings.job_image, python=self._python_of(settings.job_image))

    def for_job(self, job: Job) -> JobImage:
        """The job's image; `RuntimeFault` when this controller does not offer its version
        (started since with other images)."""
        if job.python is None:
            return self.default
        offered = self._runtimes.get(job.python)
        if offered is None:
            there = ", ".join(sorted(self._runtimes, key=version_key)) or "none"
            raise RuntimeFault(
                f"Python {job.python} is no longer offered by the controller (it offers: "
                f"{there}); submit the job again"
            )
        return self._image(offered.image, python=offered.python)

    @property
    def busy(self) -> bool:
        """A dependency build or probe is running: its container is no orphan."""
        return any(cache.busy for cache in self._caches.values())

    def _python_of(self, image: str) -> str | None:
        return next((r.python for r in self._runtimes.values() if r.image == image), None)

    def _image(self, image: str, *, python: str | None) -> JobImage:
        cache = self._caches.get(image)
        if cache is None:
            settings = self._settings.model_copy(update={"job_image": image})
            cache = self._caches[image] = DependencyImageCache(
                runtime=self._runtime, settings=settings, background=self._background
            )
        return JobImage(image=image, python=python, dependencies=cache)
