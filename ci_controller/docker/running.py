"""What running a created container takes, as a narrow interface, and a short-lived run.

Dependency builds, the build network's check and the Python probe start a container, read
its output, wait for it and remove it. They depend on this protocol, not on the whole
`Containers`, so each can be tested (or replaced) against the four calls it makes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import ExitStatus, LogFrame


class ContainerRunner(Protocol):
    """Start, follow, wait for and remove a created container."""

    async def start(self, container_id: str) -> None: ...

    def follow_logs(
        self, container_id: str, *, after: LogPosition | None
    ) -> AsyncIterator[LogFrame]: ...

    async def wait(self, container_id: str) -> ExitStatus: ...

    async def remove(self, container_id: str) -> None: ...


async def run_to_end(runner: ContainerRunner, container_id: str) -> tuple[ExitStatus, bytes]:
    """Start a short-lived container, collect its whole output, wait, and remove it."""
    output: list[bytes] = []
    try:
        await runner.start(container_id)
        async for frame in runner.follow_logs(container_id, after=None):
            output.append(frame.data)
        status = await runner.wait(container_id)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(runner.remove(container_id))
    return status, b"".join(output)
