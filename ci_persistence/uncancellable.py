"""Database work that, once begun, runs to its end even when its caller is cancelled.

aiosqlite runs every statement on its own thread. Cancelling the coroutine that awaits a
statement does not stop the statement: it still runs, later, with nobody left to look at its
result. For a `BEGIN IMMEDIATE` that is fatal: the connection ends up inside a transaction
that nobody will commit or roll back, every later `BEGIN` fails with "cannot start a
transaction within a transaction", and the process holds SQLite's write lock until it dies.

So every unit of database work runs as its own task. A caller that is cancelled meanwhile
waits for the task to finish and only then sees its `CancelledError`: a write either never
started or is committed (or rolled back) by the time the cancellation arrives, and the
connection is never left in the middle of anything.

The wait is shielded from anyio's cancel scopes (the server's streaming responses run in
them): anyio cancels level-triggered, re-cancelling a task at every turn of the event loop
for as long as it stays inside a cancelled scope, so an unshielded wait would be woken over
and over; with thirty clients gone at once those wake-ups took the whole event loop and the
server answered nobody. Inside the shield anyio leaves the task alone, and re-delivers the
cancellation as soon as the wait is over.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import anyio

T = TypeVar("T")
Method = TypeVar("Method", bound=Callable[..., Coroutine[Any, Any, Any]])


async def run_to_completion(work: Awaitable[T]) -> T:
    """Await `work` to its end; a cancellation of the caller is re-raised only afterwards."""
    task = asyncio.ensure_future(work)
    cancelled = False
    with anyio.CancelScope(shield=True):
        while not task.done():
            try:
                await asyncio.wait((task,))
            except asyncio.CancelledError:
                cancelled = True
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved: the caller is going away and cannot use it
        raise asyncio.CancelledError
    return task.result()


def uncancellable(method: Method) -> Method:
    """Decorate a repository write so that, once called, it always completes (see above)."""

    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await run_to_completion(method(*args, **kwargs))

    return cast(Method, wrapper)  # same signature: the wrapper only passes arguments through
