"""Clean-up work kept off the critical path (removing containers, deleting uploads, collecting
images), with the tasks held so they are neither garbage-collected mid-flight nor lost at exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


def side_task(work: Coroutine[object, object, T]) -> asyncio.Future[T]:
    """`work` as a task whose exception counts as seen: the code that awaits it raises it, or
    has cancelled it and moved on (no "exception was never retrieved" at exit)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(future: asyncio.Future[T]) -> None:
    if not future.cancelled():
        future.exception()


class Background:
    """Fire-and-forget tasks whose failures are logged, and which can be awaited at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[object, object, None], *, what: str) -> None:
        task = asyncio.create_task(work, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if (error := task.exception()) is not None:
            logger.warning("%s failed: %s", task.get_name(), error, exc_info=error)

    async def drain(self, *, grace: float) -> None:
        """Wait up to `grace` seconds for what is running; cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
