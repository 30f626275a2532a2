"""One job container watched from its start to its end, for `job_worker`.

- Its output is read from the stored cursors into the job's log and results (`_follow`: the one
  place where PID 1's records are routed by channel, see `container_output`).
- Its end is the engine reporting the exit, or PID 1's last word that it exits with 0, which
  comes after all its output and ~0.1 s before the engine sees the exit (any other code waits
  for the engine, which also says whether memory ran out). A cancel request or the wall-time
  deadline stops the container first.
- Then its output is drained completely and its kept files are taken (`artifact_store`): those
  PID 1 sent in its output when small, else a copy made as soon as PID 1 said they are gathered,
  while the container goes down.

What PID 1 said belongs to its container (`_Pid1End`, one per watch): a job started again in
a new container waits for that container's own word.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import TypeVar

from ci_common.models import Job
from ci_controller.artifact_store import Collected, collect_artifacts
from ci_controller.background import side_task
from ci_controller.container_output import (
    END_CHANNEL,
    FILES_CHANNEL,
    LOG_CHANNEL,
    RESULTS_CHANNEL,
    decode_frame,
)
from ci_controller.job_dispatch import WorkerEnvironment
from ci_controller.job_log import JobLog
from ci_controller.job_outcome import Outcome, StopReason, exit_outcome, stopped_outcome
from ci_controller.job_results import JobResults
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import ContainerGoneError, ExitStatus, LogFrame, RuntimeFault

logger = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 2.0
TIMEOUT_GRACE_SECONDS = 5.0
DRAIN_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


@dataclass
class _Pid1End:
    """What a job container's PID 1 said as it ended (`END_CHANNEL`, `FILES_CHANNEL`)."""

    gathered: asyncio.Event = field(default_factory=asyncio.Event)
    """The kept files are gathered (its last word came)."""
    succeeded: asyncio.Event = field(default_factory=asyncio.Event)
    """It exits with 0: the job is over, whenever the engine sees the exit."""
    files: list[bytes] = field(default_factory=lambda: list[bytes]())
    """`OUTPUT_DIR` as it sent it, in pieces (none when it is too large)."""


class ContainerWatch:
    """Watches one container of `job` to its end; one per container (see the module's doc)."""

    def __init__(
        self,
        *,
        job: Job,
        env: WorkerEnvironment,
        results: JobResults,
        log: JobLog,
        cancel: asyncio.Event,
        installed_at: LogPosition | None,
    ) -> None:
        self._job = job
        self._env = env
        self._results = results
        self._log = log
        self._cancel = cancel
        self._installed_at = installed_at
        """Where the output of the job's own dependency install ended, when its container
        installed them: its tests' output follows it."""
        self._end = _Pid1End()

    async def until_end(self, container_id: str, deadline: float) -> Outcome:
        """Follow the container to its end (see the module's doc) and say how the job ended."""
        runtime, log = self._env.runtime, self._log
        follower = asyncio.create_task(self._follow(container_id))
        waiter = asyncio.create_task(runtime.wait(container_id))
        succeeded = asyncio.create_task(self._end.succeeded.wait())
        ended = asyncio.create_task(
            asyncio.wait({waiter, succeeded}, return_when=asyncio.FIRST_COMPLETED)
        )
        early = side_task(self._artifacts_when_ready(container_id))
        try:
            stop = await race(ended, cancel=self._cancel, deadline=deadline)
            if stop is not None:
                cancelled = stop is StopReason.CANCELLED
                grace = CANCEL_GRACE_SECONDS if cancelled else TIMEOUT_GRACE_SECONDS
                await runtime.stop(container_id, grace=grace)
            # PID 1's word of a clean exit is as good as the engine's, and ~0.1 s earlier (it
            # comes last in its output, so the follower has seen everything before it). Any
            # other exit waits for the engine, which also says whether memory ran out.
            status = await waiter if stop is not None or waiter.done() else ExitStatus(0)
            await self._drain(follower)
            collected = await self._artifacts(early, container_id)
            for line in collected.notes:
                await log.note(line)
        except ContainerGoneError as exc:
            raise RuntimeFault(
                "the job's container vanished while it ran (removed outside the CI service?); "
                "submit the job again"
            ) from exc
        finally:
            for task in (follower, waiter, succeeded, ended, early):
                task.cancel()
        settings = self._env.settings
        if stop is not None:
            return stopped_outcome(stop, settings=settings)
        return exit_outcome(status, settings=settings)

    async def _artifacts_when_ready(self, container_id: str) -> Collected:
        """The kept files as soon as PID 1 says they are gathered: those it sent, or a copy
        made while the container is still exiting, so the copy and the exit overlap."""
        await self._end.gathered.wait()
        return await self._collect(container_id, sent=b"".join(self._end.files))

    async def _artifacts(self, early: asyncio.Future[Collected], container_id: str) -> Collected:
        """The kept files, once the container has exited and its output is drained: the early
        copy's result, or a copy now when PID 1 never said they were ready (it was killed)
        or the early copy failed (it raced the container's exit)."""
        if self._end.gathered.is_set():
            collected = await early
            if not collected.failed:
                return collected
        else:
            early.cancel()
        return await self._collect(container_id)

    async def _collect(self, container_id: str, *, sent: bytes | None = None) -> Collected:
        return await collect_artifacts(
            repo=self._env.repo,
            runtime=self._env.runtime,
            job=self._job,
            container_id=container_id,
            max_bytes=self._env.settings.max_artifacts_bytes,
            sent=sent,
        )

    async def _follow(self, container_id: str) -> None:
        """Store the container's output and test results, each from its stored cursor on.

        Every message of the container passes here, decoded (`container_output`): the one
        place where records are routed by channel. The log and the results keep a cursor
        each (they are stored in batches of their own), so the stream is read from the
        earlier of the two and a record at or before its own channel's cursor is skipped:
        a restarted controller repeats and loses nothing of either."""
        log_after = LogPosition.decode(self._job.log_cursor) or self._installed_at
        results_after = LogPosition.decode(self._job.results_cursor) or self._installed_at
        after = (
            None if log_after is None or results_after is None else min(log_after, results_after)
        )
        async for frame in self._env.runtime.follow_logs(container_id, after=after):
            record = decode_frame(frame.data)
            if record.channel == LOG_CHANNEL:
                if log_after is None or frame.position > log_after:
                    await self._log.add_frame(LogFrame(position=frame.position, data=record.data))
            elif record.channel == RESULTS_CHANNEL:
                if results_after is None or frame.position > results_after:
                    await self._results.add_frame(
                        LogFrame(position=frame.position, data=record.data)
                    )
            elif record.channel == FILES_CHANNEL:
                self._end.files.append(record.data)
            elif record.channel == END_CHANNEL:
                self._end.gathered.set()
                if record.data == b"0":
                    self._end.succeeded.set()
                    return  # PID 1's last word: nothing follows it
            else:
                logger.warning("job %s: output on unknown channel %r", self._job.id, record.channel)

    async def _drain(self, follower: asyncio.Task[None]) -> None:
        """Let the follower store everything the container wrote before it stopped."""
        log = self._log
        try:
            await asyncio.wait_for(asyncio.shield(follower), DRAIN_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning("job %s: output still streaming after exit; giving up", self._job.id)
            await log.note("the end of the output could not be read from the container")
        except RuntimeFault as exc:
            logger.warning("job %s: %s", self._job.id, exc)
            await log.note(f"part of the output could not be read: {exc}")


async def race(
    task: asyncio.Future[T], *, cancel: asyncio.Event, deadline: float
) -> StopReason | None:
    """Wait for `task`, `cancel` or the deadline (event-loop time); None when `task` finished."""
    cancelled = asyncio.create_task(cancel.wait())
    remaining = (
        None if math.isinf(deadline) else max(0.0, deadline - asyncio.get_running_loop().time())
    )
    try:
        done, _ = await asyncio.wait(
            {task, cancelled}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        cancelled.cancel()
    if task in done:
        return None
    return StopReason.CANCELLED if cancelled in done else StopReason.TIMED_OUT
