"""What a job page shows of the job's per-test results: the groups an outcome filter makes
(failures and errors first, then every other outcome) and one page of each.

A group is a query of the stored results by outcome after an index (the API's own
`list_test_results`), so its rows are in report order and a page continues exactly after the
last row shown: the page's script asks for the rows after the last one a group has, so a
result is never shown twice nor skipped, however the stream's `test` events arrive. A page is
capped (`page_rows`), so a finished job with thousands of results renders as fast as one with
ten; the rest comes with "Show more".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode

from ci_common.api import TestResultView
from ci_common.models import JobId
from ci_common.test_results import FAILING_OUTCOMES, TestOutcome, TestResultRepository

FAILING_PAGE_ROWS = 25
"""Failures carry a traceback and output each (up to 8,000 characters): fewer per page."""
OTHER_PAGE_ROWS = 100
MAX_PAGE_ROWS = 200

OUTCOME_SYMBOLS: dict[str, str] = {
    TestOutcome.PASSED: "✓",
    TestOutcome.FAILED: "✗",
    TestOutcome.ERROR: "!",
    TestOutcome.SKIPPED: "↷",
    TestOutcome.XFAILED: "x",
    TestOutcome.XPASSED: "X",
}
"""Each outcome told by a symbol beside its word, so it reads without colour."""


class OutcomeFilter(StrEnum):
    """The job page's choice of results: all of them, or one outcome."""

    ALL = "all"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    PASSED = "passed"

    @classmethod
    def parse(cls, value: str | None) -> OutcomeFilter:
        """A filter from a query string; anything unknown shows all (a stale link still works)."""
        return cls(value) if value in set(cls) else cls.ALL


@dataclass(frozen=True)
class GroupPlan:
    """One list of results on the page: its element id, heading and outcomes."""

    key: str
    heading: str
    outcomes: tuple[TestOutcome, ...]

    @property
    def page_rows(self) -> int:
        failing = any(outcome in FAILING_OUTCOMES for outcome in self.outcomes)
        return FAILING_PAGE_ROWS if failing else OTHER_PAGE_ROWS

    @property
    def query(self) -> str:
        """The outcomes as the rows route's query string."""
        return urlencode([("outcome", outcome.value) for outcome in self.outcomes])


@dataclass(frozen=True)
class ResultGroup:
    """A group with its first page of results and whether more follow."""

    plan: GroupPlan
    results: list[TestResultView]
    more: bool

    @property
    def last_index(self) -> int:
        """Where the next page starts (0: from the first result)."""
        return self.results[-1].index if self.results else 0


def group_plans(chosen: OutcomeFilter) -> list[GroupPlan]:
    """All: failures and errors, then the rest; one outcome: that one alone."""
    if chosen is OutcomeFilter.ALL:
        others = tuple(outcome for outcome in TestOutcome if outcome not in FAILING_OUTCOMES)
        return [
            GroupPlan("failing", "Failures and errors", FAILING_OUTCOMES),
            GroupPlan("other", "Other results", others),
        ]
    outcome = TestOutcome(chosen.value)
    return [GroupPlan(outcome.value, f"Results: {outcome.value}", (outcome,))]


async def result_page(
    repo: TestResultRepository,
    job_id: JobId,
    *,
    outcomes: Sequence[TestOutcome],
    after: int,
    limit: int,
) -> tuple[list[TestResultView], bool]:
    """Up to `limit` results of `outcomes` after index `after`, and whether more follow
    (`limit` 0 only asks that)."""
    results = await repo.list_test_results(
        job_id, outcomes=tuple(outcomes), after_index=after, limit=limit + 1
    )
    return [TestResultView.from_result(result) for result in results[:limit]], len(results) > limit


async def result_groups(
    repo: TestResultRepository, job_id: JobId, chosen: OutcomeFilter
) -> list[ResultGroup]:
    """The first page of each of the filter's groups."""
    groups: list[ResultGroup] = []
    for plan in group_plans(chosen):
        results, more = await result_page(
            repo, job_id, outcomes=plan.outcomes, after=0, limit=plan.page_rows
        )
        groups.append(ResultGroup(plan=plan, results=results, more=more))
    return groups
