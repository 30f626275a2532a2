"""Running blocking engine calls without blocking the event loop or the process exit.

Short calls (create, start, inspect) go through `asyncio.to_thread`. Calls that block for as
long as a job runs (waiting for exit, following output) get a daemon thread of their own: the
default executor's threads are joined when the event loop shuts down, so a controller told to
stop would otherwise hang until every job finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")


async def in_daemon_thread(name: str, call: Callable[[], T]) -> T:
    """Run `call` in a new daemon thread and await its result (or its exception)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver_result(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def deliver_error(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def body() -> None:
        try:
            value = call()
        except BaseException as exc:
            _call_soon(loop, deliver_error, exc)
        else:
            _call_soon(loop, deliver_result, value)

    threading.Thread(target=body, name=name, daemon=True).start()
    return await future


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[A], None], argument: A) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
        loop.call_soon_threadsafe(callback, argument)
