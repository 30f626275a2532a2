"""Per-test results as SSE messages: `event: test`, the `TestEvent` JSON as `data:`, no `id:`.

A named event: a browser's `EventSource.onmessage` and any follower that only reads unnamed
messages never see it, and clients that read every message find `"type": "test"` in it (ours
ignore types they do not know). It carries no `id:`, so `Last-Event-ID` stays a log seq. Results
are read in pages of `TEST_PAGE_ROWS`, each once the reader has taken the one before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sse_starlette import ServerSentEvent

from ci_common.api import TestEvent
from ci_common.models import JobId
from ci_common.test_results import TestResult, TestResultRepository

TEST_PAGE_ROWS = 200


def encode_test(result: TestResult) -> bytes:
    event = TestEvent.model_validate(result.model_dump())
    return ServerSentEvent(data=event.model_dump_json(), event="test").encode()


@dataclass(frozen=True)
class TestBatch:
    """New results of one job, SSE-encoded one after another (`ends[i]` is where result
    `first_index + i` ends in `joined`)."""

    __test__ = False

    first_index: int
    ends: tuple[int, ...]
    joined: bytes

    @classmethod
    def of(cls, results: Sequence[TestResult]) -> TestBatch:
        encoded = [encode_test(result) for result in results]
        ends: list[int] = []
        total = 0
        for message in encoded:
            total += len(message)
            ends.append(total)
        return cls(first_index=results[0].index, ends=tuple(ends), joined=b"".join(encoded))

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.ends) - 1

    @property
    def size(self) -> int:
        return len(self.joined)

    def after(self, index: int) -> bytes:
        """The encoded results numbered above `index`."""
        skip = index - self.first_index + 1
        if skip <= 0:
            return self.joined
        return self.joined[self.ends[skip - 1] :] if skip < len(self.ends) else b""


async def result_batches(
    repo: TestResultRepository, job_id: JobId, *, after_index: int, up_to: int | None = None
) -> AsyncIterator[TestBatch]:
    """The job's results after `after_index` (through `up_to`), a page at a time."""
    while up_to is None or after_index < up_to:
        results = await repo.list_test_results(
            job_id, after_index=after_index, limit=TEST_PAGE_ROWS
        )
        if up_to is not None:
            results = [result for result in results if result.index <= up_to]
        if not results:
            return
        after_index = results[-1].index
        yield TestBatch.of(results)
