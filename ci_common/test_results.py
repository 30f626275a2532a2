"""Per-test results: what our pytest plugin reports from a job, as stored and counted, and the
storage interface for them.

A job's results are rows numbered from 1 in the order they were reported (`index`), stored by
the controller as they arrive together with its position in the container's results stream,
so a restarted controller neither loses nor repeats one (the log's guarantee). Counts are
derived from the rows, so they are current while the job runs. A test that both passed and
failed on the same `content_hash` (the project's files, its pytest arguments and its Python
version) is flaky.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from ci_common.models import JobId, UserId


class TestOutcome(StrEnum):
    """pytest's words for how one test ended."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"


FAILING_OUTCOMES = (TestOutcome.FAILED, TestOutcome.ERROR)
"""What a rerun of failures runs again, and what counts against a test for flakiness."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class TestReport(_Record):
    """One result as the plugin reports it (before it has an index)."""

    __test__ = False

    nodeid: str
    outcome: TestOutcome
    phase: str = Field(description="setup, call, teardown or collect")
    duration: float = 0.0
    message: str | None = None
    traceback: str | None = None
    output: str | None = None


class TestResult(TestReport):
    """One stored result of one job."""

    job_id: JobId
    index: int
    created_at: datetime


class TestCounts(_Record):
    """A job's results so far, by outcome."""

    __test__ = False

    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    duration: float = 0.0
    note: str | None = None

    @classmethod
    def of(cls, by_outcome: dict[str, tuple[int, float]], *, note: str | None) -> TestCounts:
        """From `{outcome: (rows, seconds)}`."""

        def count(outcome: TestOutcome) -> int:
            return by_outcome.get(outcome.value, (0, 0.0))[0]

        return cls(
            total=sum(rows for rows, _ in by_outcome.values()),
            passed=count(TestOutcome.PASSED),
            failed=count(TestOutcome.FAILED),
            errors=count(TestOutcome.ERROR),
            skipped=count(TestOutcome.SKIPPED),
            xfailed=count(TestOutcome.XFAILED),
            xpassed=count(TestOutcome.XPASSED),
            duration=round(sum(seconds for _, seconds in by_outcome.values()), 6),
            note=note,
        )


class FlakyTest(_Record):
    """A test that passed and failed on the same content hash."""

    project: str | None
    nodeid: str
    passes: int
    failures: int
    last_seen: datetime


class TestResultRepository(Protocol):
    """Stored per-test results."""

    async def record_test_results(
        self,
        job_id: JobId,
        reports: Sequence[TestReport],
        *,
        cursor: str | None,
        content_hash: str | None = None,
        session_exitstatus: int | None = None,
        after_index: int | None = None,
    ) -> int:
        """Append `reports` with the next indexes and, in the same transaction, the results
        stream's cursor (and the job's content hash once known, and pytest's exit status once
        its session ended); returns the last index. With `after_index`, only while that is
        still the last index, else `ConcurrentWriterError` and nothing stored."""
        ...

    async def set_files_hash(self, job_id: JobId, files_hash: str) -> None:
        """The hash of the job's uploaded files (the content hash adds args and Python)."""
        ...

    async def set_tests_note(self, job_id: JobId, note: str) -> None:
        """Why the results are incomplete (pytest crashed, was killed, collection failed)."""
        ...

    async def list_test_results(
        self,
        job_id: JobId,
        *,
        outcomes: Sequence[TestOutcome] = (),
        after_index: int = 0,
        limit: int = 100,
    ) -> list[TestResult]:
        """Results with `index > after_index`, in order, optionally only some outcomes."""
        ...

    async def test_counts(self, job_ids: Sequence[JobId]) -> dict[JobId, TestCounts]:
        """Each job's counts (zeros for a job without results), in one query."""
        ...

    async def failed_node_ids(self, job_id: JobId) -> list[str]:
        """The distinct node ids that failed or errored in the job, in report order."""
        ...

    async def flaky_tests(self, user_id: UserId, *, project: str | None = None) -> list[FlakyTest]:
        """The user's tests that passed and failed on one content hash, most recent first."""
        ...
