"""Reading a container's output as positioned frames, off the event loop.

Docker's log stream blocks, so a daemon thread pumps it into an asyncio queue; each raw line
(`timestamps=True`) is parsed into a `LogFrame` whose `LogPosition` is its timestamp and rank,
and frames at or before the starting position are dropped (`log_cursor.PositionTracker`). A
reader that leaves closes the stream, even one still being opened.

At most `QUEUED_FRAMES` frames wait for the reader: when it is slower than the container (a
slow database), the thread stops reading and Docker keeps the rest in its log file, so the
controller's memory does not grow with the log. Meanwhile a second thread attaches to the
container and holds it back to the reader's pace (`output_pacing`), so that rest stays small
and no line waits long behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from docker.errors import NotFound

from ci_controller.docker.engine_api import EngineApi, LogStream
from ci_controller.docker.output_pacing import OutputPacer
from ci_controller.log_cursor import LogPosition, PositionTracker, parse_timestamp
from ci_controller.runtime import LogFrame, RuntimeFault
from ci_controller.threads import in_daemon_thread

logger = logging.getLogger(__name__)

QUEUED_FRAMES = 64
"""Frames read ahead of the reader: a job container's are up to 16 KiB (`container_output`)."""


async def read_output(
    streams: EngineApi, container_id: str, *, after: LogPosition | None
) -> AsyncIterator[LogFrame]:
    """The container's output after `after`, followed until the stream ends (the container
    stopped, or the connection dropped: the caller decides whether to reopen)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[LogFrame | BaseException | None] = asyncio.Queue()
    opened: list[LogStream] = []
    room = threading.Semaphore(QUEUED_FRAMES)
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
            )
            opened.append(stream)
            if closing:  # the reader left while the stream was being opened
                stream.close()
                return
            for raw in stream:
                frame = _parse_frame(raw, tracker)
                if frame is None:
                    continue
                while not room.acquire(timeout=0.5):
                    if closing:
                        return
                put(frame)
            put(None)
        except NotFound:
            put(None)
        except BaseException as exc:
            put(None if closing else exc)

    pacer = OutputPacer()

    def pace() -> None:
        try:
            stream = streams.attach(container_id, stdout=True, stderr=True, stream=True, logs=False)
            opened.append(stream)
            if closing:  # the reader left while the stream was being opened
                stream.close()
                return
            pacer.pace(stream)
        except Exception as exc:  # pacing is a courtesy: without it the job goes on unpaced
            if not closing:
                logger.info("not pacing the output of %s: %s", container_id[:12], exc)

    pumping = asyncio.ensure_future(in_daemon_thread(f"logs-{container_id[:12]}", pump))
    pacing = asyncio.ensure_future(in_daemon_thread(f"pace-{container_id[:12]}", pace))
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise RuntimeFault(f"lost the container's output stream: {item}") from item
            room.release()
            pacer.taken(len(item.data))
            yield item
    finally:
        closing = True
        pacer.close()
        for stream in opened:
            with contextlib.suppress(Exception):
                stream.close()
        pumping.cancel()
        pacing.cancel()


def _parse_frame(raw: bytes, tracker: PositionTracker) -> LogFrame | None:
    stamp, _, data = raw.partition(b" ")
    try:
        timestamp_ns = parse_timestamp(stamp.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        logger.warning("log frame without a timestamp: %r", raw[:80])
        return None
    position = tracker.accept(timestamp_ns)
    return None if position is None else LogFrame(position=position, data=data)
