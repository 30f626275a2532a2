"""One started, never-used job container waiting for the next job, so Docker's container start
(~220 ms, most of the dispatch latency) happens before a job exists instead of after.

The pool holds at most one warm container per image it expects jobs on: the base job image
and the dependency image the last job that needed one ran on (`use`), since the next job of a
project usually has the same dependencies; a job on any other image takes the ordinary
create-and-start path. A worker `take`s the one for its image (the pool forgets it at once,
so no container is ever handed out twice, and starts a replacement in the background), copies
the project in, and only then records it as the job's container. Each
container still runs exactly one job, with the same limits, user and bootstrap as any other;
only the bootstrap's wait for the project has no deadline (see `bootstrap`).

Ownership without a job label (labels cannot change after creation): a warm container carries
`ci.installation` and `ci.role=warm`. While unclaimed it is known only to this pool, so the
reconciler keeps a warm container only while it is one the pool `holds` (or one is being
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

from ci_controller.background import Background
from ci_controller.bootstrap import JOB_COMMAND, JOB_ENVIRONMENT
from ci_controller.runtime import ContainerRuntime, RuntimeFault, Sandbox, WarmContainerSpec
from ci_controller.settings import ControllerSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Warm:
    id: str
    image_id: str


class WarmPool:
    """The controller's warm containers; disabled by `CI_WARM_CONTAINERS=false`."""

    def __init__(
        self, *, runtime: ContainerRuntime, settings: ControllerSettings, background: Background
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._background = background
        self._ready: dict[str, _Warm] = {}
        """By image reference."""
        self._starting: set[str] = set()
        self._recent: str | None = None
        """The dependency image the last job that needed one ran on."""
        self._closed = not settings.warm_containers
        self.backlogged = False
        """Set by the controller while queued jobs wait for a slot: start nothing then."""

    @property
    def holds(self) -> set[str]:
        """The unclaimed warm containers."""
        return {warm.id for warm in self._ready.values()}

    @property
    def busy(self) -> bool:
        """A warm container is being started: one the pool does not know yet may exist."""
        return bool(self._starting)

    def fill(self) -> None:
        """Start a warm container in the background for each expected image that has none
        (nor one coming)."""
        if self._closed or self.backlogged:
            return
        wanted = [self._settings.job_image, *([self._recent] if self._recent else [])]
        for image in wanted:
            if image not in self._ready and image not in self._starting:
                self._starting.add(image)
                self._background.spawn(self._start_one(image), what="start a warm container")

    async def use(self, image: str) -> None:
        """A job runs on dependency image `image`: keep a container of it warm from now on,
        instead of one of the dependency image used before (removed before this returns, so
        that image may be collected)."""
        if image == self._recent:
            return
        old = self._ready.pop(self._recent, None) if self._recent is not None else None
        self._recent = image
        self.fill()
        if old is not None:
            try:
                await self._runtime.remove(old.id)
            except RuntimeFault as exc:
                logger.warning("could not remove the warm container %s: %s", old.id[:12], exc)

    def peek(self, image: str) -> str | None:
        """The warm container a job on `image` would be given now, left in the pool."""
        ready = self._ready.get(image)
        return None if ready is None else ready.id

    def take(self, *, image: str, image_id: str | None = None) -> str | None:
        """The warm container for a job on `image` (whose id must be `image_id` when given:
        the job image may have been rebuilt), now the caller's alone, or None. A replacement
        is started right away."""
        ready = self._ready.pop(image, None)
        self.fill()
        if ready is None:
            return None
        if image_id is not None and ready.image_id != image_id:
            logger.info("warm container %s has an outdated job image; removing it", ready.id[:12])
            self._discard(ready.id)
            return None
        return ready.id

    async def close(self) -> None:
        """Stop filling and remove the unclaimed warm containers (shutdown)."""
        self._closed = True
        ready, self._ready = list(self._ready.values()), {}
        for warm in ready:
            try:
                await self._runtime.remove(warm.id)
            except RuntimeFault as exc:
                logger.warning("could not remove the warm container %s: %s", warm.id[:12], exc)

    def _discard(self, container_id: str) -> None:
        self._background.spawn(
            self._runtime.remove(container_id), what=f"remove warm {container_id[:12]}"
        )

    async def _start_one(self, image: str) -> None:
        settings = self._settings
        try:
            image_id = await self._runtime.ensure_image(image)
            container_id = await self._runtime.start_warm_container(
                WarmContainerSpec(
                    image=image,
                    command=JOB_COMMAND,
                    sandbox=Sandbox.for_jobs(settings),
                    environment=JOB_ENVIRONMENT,
                )
            )
        except RuntimeFault as exc:
            logger.warning("cannot start a warm container (%s); trying again later", exc)
            return
        finally:
            self._starting.discard(image)
        unwanted = image not in (settings.job_image, self._recent)
        if self._closed or unwanted:  # stopped, or another image wanted meanwhile
            with contextlib.suppress(RuntimeFault):
                await self._runtime.remove(container_id)
            return
        logger.debug("warm container %s (%s) is waiting for a job", container_id[:12], image)
        self._ready[image] = _Warm(id=container_id, image_id=image_id)
