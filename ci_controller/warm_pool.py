"""One started, never-used job container waiting for the next job, so Docker's container start
(~220 ms, most of the dispatch latency) happens before a job exists instead of after.

The pool holds at most one warm container, of the base job image: a job that needs a
dependency image takes the ordinary create-and-start path. A worker `take`s it (the pool
forgets it at once, so no container is ever handed out twice, and starts a replacement in the
background), copies the project in, and only then records it as the job's container. Each
container still runs exactly one job, with the same limits, user and bootstrap as any other;
only the bootstrap's wait for the project has no deadline (see `bootstrap`).

Ownership without a job label (labels cannot change after creation): a warm container carries
`ci.installation` and `ci.role=warm`. While unclaimed it is known only to this pool, so the
reconciler keeps a warm container only while it is the pool's `current` one (or one is being
started: `busy`) or a job references it; any other is an orphan, which is how a dead
controller's warm container is removed at the next start. Once claimed, the job's stored
`container_id` is the link, and recovery adopts by it.

While jobs are waiting for a free slot the pool starts nothing (`backlogged`): each of them
creates its own container anyway, and an extra start would only compete with them for the
CPU. It fills again once the queue has drained.

The pool never fails a job: a warm container that is gone, has exited or runs an outdated job
image (rebuilt since) is discarded, and the job starts its own. A failed start is logged and
tried again at the next reconcile.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from ci_common.settings import Settings
from ci_controller.background import Background
from ci_controller.bootstrap import JOB_COMMAND, JOB_ENVIRONMENT
from ci_controller.runtime import ContainerRuntime, RuntimeFault, WarmContainerSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Warm:
    id: str
    image_id: str


class WarmPool:
    """The controller's warm container; disabled by `CI_WARM_CONTAINERS=false`."""

    def __init__(
        self, *, runtime: ContainerRuntime, settings: Settings, background: Background
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._background = background
        self._ready: _Warm | None = None
        self._starting = False
        self._closed = not settings.warm_containers
        self.backlogged = False
        """Set by the controller while queued jobs wait for a slot: start nothing then."""

    @property
    def current(self) -> str | None:
        """The unclaimed warm container, if there is one."""
        return self._ready.id if self._ready is not None else None

    @property
    def busy(self) -> bool:
        """A warm container is being started: one the pool does not know yet may exist."""
        return self._starting

    def fill(self) -> None:
        """Start a warm container in the background unless there is one (or one coming)."""
        if self._closed or self.backlogged or self._ready is not None or self._starting:
            return
        self._starting = True
        self._background.spawn(self._start_one(), what="start a warm container")

    def take(self, *, image_id: str) -> str | None:
        """The warm container for a job on `image_id`, now the caller's alone, or None. A
        replacement is started right away."""
        ready, self._ready = self._ready, None
        self.fill()
        if ready is None:
            return None
        if ready.image_id != image_id:
            logger.info("warm container %s has an outdated job image; removing it", ready.id[:12])
            self._discard(ready.id)
            return None
        return ready.id

    async def close(self) -> None:
        """Stop filling and remove the unclaimed warm container (shutdown)."""
        self._closed = True
        ready, self._ready = self._ready, None
        if ready is not None:
            try:
                await self._runtime.remove(ready.id)
            except RuntimeFault as exc:
                logger.warning("could not remove the warm container %s: %s", ready.id[:12], exc)

    def _discard(self, container_id: str) -> None:
        self._background.spawn(
            self._runtime.remove(container_id), what=f"remove warm {container_id[:12]}"
        )

    async def _start_one(self) -> None:
        settings = self._settings
        try:
            image_id = await self._runtime.ensure_image(settings.job_image)
            container_id = await self._runtime.start_warm_container(
                WarmContainerSpec(
                    image=settings.job_image,
                    command=JOB_COMMAND,
                    network=settings.job_network,
                    memory=settings.job_memory,
                    cpus=settings.job_cpus,
                    pids=settings.job_pids,
                    disk=settings.job_disk_bytes,
                    max_log_bytes=int(settings.max_log_mb * 1024 * 1024),
                    environment=JOB_ENVIRONMENT,
                )
            )
        except RuntimeFault as exc:
            logger.warning("cannot start a warm container (%s); trying again later", exc)
            return
        finally:
            self._starting = False
        if self._closed:  # stopped meanwhile: remove it now, shutdown is waiting for us
            with contextlib.suppress(RuntimeFault):
                await self._runtime.remove(container_id)
            return
        logger.debug("warm container %s is waiting for a job", container_id[:12])
        self._ready = _Warm(id=container_id, image_id=image_id)
