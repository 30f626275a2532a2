"""The end-of-run summary `ci` prints from a job's results."""

from __future__ import annotations

from datetime import UTC, datetime

from ci_client.test_summary import MAX_LISTED, counts_line, summary_lines
from ci_common.api import FlakyTestView, JobView, TestCountsView, TestResultView
from ci_common.models import JobStatus
from ci_common.test_results import TestOutcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(counts: TestCountsView) -> JobView:
    return JobView(
        id="6f1c0000-0000-4000-8000-000000000000",
        status=JobStatus.COMPLETED,
        conclusion=None,
        success=None,
        exit_code=1,
        error=None,
        cancel_requested=False,
        created_at=NOW,
        started_at=NOW,
        finished_at=NOW,
        project="inventory",
        tests=counts,
    )


def failure(number: int, outcome: TestOutcome = TestOutcome.FAILED) -> TestResultView:
    return TestResultView(
        index=number,
        nodeid=f"t.py::test_{number}",
        outcome=outcome,
        phase="call",
        duration=0.1,
        message=f"AssertionError: {number}\nsecond line",
    )


def test_failures_are_listed_one_line_each_known_flaky_marked_then_the_counts() -> None:
    counts = TestCountsView(total=3, passed=1, failed=1, errors=1, duration=1.5)
    flaky = FlakyTestView(
        project="inventory", nodeid="t.py::test_2", passes=3, failures=1, last_seen=NOW
    )

    lines = summary_lines(job(counts), [failure(1), failure(2, TestOutcome.ERROR)], [flaky])

    assert lines[:3] == [
        "Failures:",
        "  FAILED t.py::test_1 - AssertionError: 1",
        "  ERROR t.py::test_2 [known flaky] - AssertionError: 2",
    ]
    assert "Tests: 1 failed, 1 passed, 1 error in 1.50s" in lines
    assert lines[-1] == f"Run only these again: ci submit test --rerun-failed {job(counts).id}"


def test_a_long_list_is_cut_with_how_many_more() -> None:
    failures = [failure(number) for number in range(MAX_LISTED + 5)]
    lines = summary_lines(job(TestCountsView(total=25, failed=25)), failures, [])
    assert f"  … and 5 more (`ci tests {job(TestCountsView()).id} --failed`)" in lines


def test_no_results_say_so() -> None:
    assert counts_line(TestCountsView()) == "no test results"
