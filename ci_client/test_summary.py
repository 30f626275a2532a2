"""What `ci` prints about a job's per-test results: the end-of-run summary, `ci tests` rows,
`ci flaky` rows. Plain functions from results to lines; the commands print them.

The summary lists each failing test with its one-line message, marks those already known to
be flaky (passed and failed on the same content before), then the counts, and says how to run
only the failures again. It stays short: at most `MAX_LISTED` failures, then how many more.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ci_common.api import FlakyTestView, JobView, TestCountsView, TestResultView

MAX_LISTED = 20
MAX_MESSAGE_CHARS = 160
_LABELS = {"failed": "FAILED", "error": "ERROR", "xpassed": "XPASS", "xfailed": "XFAIL"}


def one_line(text: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def counts_line(counts: TestCountsView) -> str:
    """`3 passed, 1 failed, 1 error, … in 0.52s`, naming only outcomes that occurred."""
    parts = [
        f"{number} {word}"
        for number, word in (
            (counts.failed, "failed"),
            (counts.passed, "passed"),
            (counts.skipped, "skipped"),
            (counts.xfailed, "xfailed"),
            (counts.xpassed, "xpassed"),
            (counts.errors, "error" if counts.errors == 1 else "errors"),
        )
        if number
    ]
    if not parts:
        return "no test results"
    return f"{', '.join(parts)} in {counts.duration:.2f}s"


def result_line(result: TestResultView, *, flaky: bool = False) -> str:
    label = _LABELS.get(result.outcome.value, result.outcome.value.upper())
    message = one_line(result.message)
    return f"{label} {result.nodeid}{' [known flaky]' if flaky else ''}" + (
        f" - {message}" if message else ""
    )


def summary_lines(
    job: JobView, failures: list[TestResultView], flaky: Iterable[FlakyTestView]
) -> list[str]:
    """The end-of-run summary of `job` (its failed and errored results given)."""
    known = {test.nodeid for test in flaky if test.project == job.project}
    lines: list[str] = []
    if failures:
        lines.append("Failures:")
        for result in failures[:MAX_LISTED]:
            lines.append("  " + result_line(result, flaky=result.nodeid in known))
        if len(failures) > MAX_LISTED:
            lines.append(
                f"  … and {len(failures) - MAX_LISTED} more (`ci tests {job.id} --failed`)"
            )
    lines.append(f"Tests: {counts_line(job.tests)}")
    if job.tests.note:
        lines.append(f"Note: {job.tests.note}")
    if failures:
        flaky_failures = sum(1 for result in failures if result.nodeid in known)
        if flaky_failures:
            lines.append(f"{flaky_failures} of the failures are known to be flaky (`ci flaky`).")
        lines.append(f"Run only these again: ci submit test --rerun-failed {job.id}")
    return lines


def flaky_lines(flaky: list[FlakyTestView]) -> list[str]:
    width = max((len(test.project or "-") for test in flaky), default=7)
    header = f"{'PROJECT':<{width}}  PASSES  FAILURES  LAST SEEN         NODE ID"
    rows = [
        f"{test.project or '-':<{width}}  {test.passes:>6}  {test.failures:>8}  "
        f"{test.last_seen.strftime('%Y-%m-%d %H:%M')}  {test.nodeid}"
        for test in flaky
    ]
    return [header, *rows]
