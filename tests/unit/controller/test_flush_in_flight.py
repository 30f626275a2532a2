"""What arrives while a batch is being stored is stored soon after it, without waiting for
more: a test that blocks for minutes after a failure must not hide that failure (or the log
line before it) from followers for those minutes. The repositories here hold the first write
until the test lets it go."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from ci_common.models import JobId
from ci_common.test_results import TestReport
from ci_controller.job_log import JobLog
from ci_controller.job_results import JobResults
from ci_controller.log_cursor import LogPosition
from ci_controller.runtime import LogFrame

DEADLINE = 2.0


def frame(data: bytes, stamp: int) -> LogFrame:
    return LogFrame(position=LogPosition(timestamp_ns=stamp, count=1), data=data)


def record(nodeid: str) -> bytes:
    line = {"kind": "test", "nodeid": nodeid, "outcome": "failed", "phase": "call"}
    return json.dumps(line).encode() + b"\n"


class HeldWrites:
    """Stores whatever it is given; the first write waits for `release`."""

    def __init__(self) -> None:
        self.stored: list[Any] = []
        self.first_started = asyncio.Event()
        self.release = asyncio.Event()
        self.changed = asyncio.Event()

    async def hold(self, item: Any) -> None:
        if not self.first_started.is_set():
            self.first_started.set()
            await self.release.wait()
        self.stored.append(item)
        self.changed.set()

    async def append_log(self, job_id: JobId, text: str, **_: object) -> None:
        await self.hold(text)

    async def record_test_results(
        self, job_id: JobId, reports: list[TestReport], **_: object
    ) -> int:
        for report in reports:
            await self.hold(report.nodeid)
        return len(self.stored)


async def stored_within(writes: HeldWrites, expected: list[Any]) -> list[Any]:
    """What is stored once it is `expected`, or when the deadline has passed."""
    try:
        async with asyncio.timeout(DEADLINE):
            while writes.stored != expected:
                writes.changed.clear()
                await writes.changed.wait()
    except TimeoutError:
        pass
    return writes.stored


async def test_a_result_that_comes_while_a_batch_is_stored_is_stored_after_it() -> None:
    writes = HeldWrites()
    job = SimpleNamespace(
        id=JobId("job"),
        files_hash=None,
        content_hash=None,
        session_exitstatus=None,
        tests_reported=0,
        pytest_args=(),
    )
    results = JobResults(repo=writes, job=job)  # pyright: ignore[reportArgumentType]
    await results.add_frame(frame(record("t.py::first"), 1))
    await asyncio.wait_for(writes.first_started.wait(), DEADLINE)
    await results.add_frame(frame(record("t.py::while_storing"), 2))
    writes.release.set()
    # No further record comes (the next test blocks): the second must be stored anyway.
    assert await stored_within(writes, ["t.py::first", "t.py::while_storing"]) == [
        "t.py::first",
        "t.py::while_storing",
    ]
    await results.close()


async def test_output_that_comes_while_a_chunk_is_stored_is_stored_after_it() -> None:
    writes = HeldWrites()
    log = JobLog(repo=writes, job_id=JobId("job"), max_bytes=1 << 20)  # pyright: ignore[reportArgumentType]
    await log.add_frame(frame(b"first\n", 1))
    await asyncio.wait_for(writes.first_started.wait(), DEADLINE)
    await log.add_frame(frame(b"while storing\n", 2))
    writes.release.set()
    assert await stored_within(writes, ["first\n", "while storing\n"]) == [
        "first\n",
        "while storing\n",
    ]
    await log.close()
