"""Reading a job container's results stream (its stderr) as positioned frames.

The job's own output is folded into stdout by the bootstrap and read by `docker_logs`; the
container's stderr carries only our plugin's records (see `job_plugin`). This reads that
stream the same way, in its own module so the log path stays as it is: a daemon thread pumps
Docker's blocking stream into an asyncio queue, frames at or before the stored position are
dropped (`PositionTracker`), and a stream that ends while the container still runs (a dropped
connection) is reopened from the last frame yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from docker.errors import NotFound

from ci_controller.engine_api import EngineApi, LogStream
from ci_controller.log_cursor import LogPosition, PositionTracker, parse_timestamp
from ci_controller.runtime import LogFrame, RuntimeFault
from ci_controller.threads import in_daemon_thread

logger = logging.getLogger(__name__)


async def follow_results(
    streams: EngineApi,
    container_id: str,
    *,
    after: LogPosition | None,
    running: Callable[[], Awaitable[bool]],
) -> AsyncIterator[LogFrame]:
    """The container's stderr after `after`, until the container has stopped."""
    position = after
    while True:
        async for frame in _read_stderr(streams, container_id, after=position):
            position = frame.position
            yield frame
        if not await running():
            return
        logger.warning("results stream of %s ended early; reopening it", container_id[:12])


async def _read_stderr(
    streams: EngineApi, container_id: str, *, after: LogPosition | None
) -> AsyncIterator[LogFrame]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[LogFrame | BaseException | None] = asyncio.Queue()
    opened: list[LogStream] = []
    closing = False

    def put(item: LogFrame | BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        tracker = PositionTracker(after)
        try:
            stream = streams.logs(
                container_id,
                stream=True,
                follow=True,
                timestamps=True,
                since=after.since_seconds if after and after.since_seconds > 0 else None,
                stdout=False,
                stderr=True,
            )
            opened.append(stream)
            if closing:
                stream.close()
                return
            for raw in stream:
                stamp, _, data = raw.partition(b" ")
                try:
                    timestamp_ns = parse_timestamp(stamp.decode("ascii"))
                except (UnicodeDecodeError, ValueError):
                    logger.warning("results frame without a timestamp: %r", raw[:80])
                    continue
                position = tracker.accept(timestamp_ns)
                if position is not None:
                    put(LogFrame(position=position, data=data))
            put(None)
        except NotFound:
            put(None)
        except BaseException as exc:
            put(None if closing else exc)

    pumping = asyncio.ensure_future(in_daemon_thread(f"results-{container_id[:12]}", pump))
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise RuntimeFault(f"lost the container's results stream: {item}") from item
            yield item
    finally:
        closing = True
        for stream in opened:
            with contextlib.suppress(Exception):
                stream.close()
        pumping.cancel()
