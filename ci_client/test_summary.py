"""What `ci` prints about a job's per-test results: the end-of-run summary, `ci tests` rows,
`ci flaky` rows. Plain functions from results to lines; the commands print them.

The summary lists each failing test with its one-line message, marks those already known to
be flaky (passed and failed on the same content before), then the counts, and says how to run
only the failures again. It stays short: at most `MAX_LISTED` failures, then how many more.

The functions read only the fields they name (the protocols below), so they take the pydantic
views of `ci_common.api` (`ci tests`, `ci flaky`) and the plain dataclasses decoded here with
`json` alike. `ci submit test` and `ci wait` print the summary from the latter: like the SSE
events (`ci_client.events`), it must not cost a pydantic import on every submit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from ci_common.api import FlakyTestView


class CountsLike(Protocol):
    @property
    def passed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def xfailed(self) -> int: ...
    @property
    def xpassed(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def note(self) -> str | None: ...


class JobLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def project(self) -> str | None: ...
    @property
    def tests(self) -> CountsLike: ...


class ResultLike(Protocol):
    @property
    def nodeid(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def message(self) -> str | None: ...


class FlakyLike(Protocol):
    @property
    def project(self) -> str | None: ...
    @property
    def nodeid(self) -> str: ...


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    duration: float = 0.0
    note: str | None = None


@dataclass(frozen=True)
class SummaryJob:
    id: str
    project: str | None
    tests: Counts


@dataclass(frozen=True)
class Row:
    """A failed result, or a flaky test (`outcome` and `message` then unused)."""

    nodeid: str
    outcome: str = ""
    message: str | None = None
    project: str | None = None


def decode_job(raw: dict[str, object]) -> SummaryJob:
    """The fields of a job's JSON the summary reads."""
    tests = raw.get("tests")
    counts = cast("dict[str, object]", tests) if isinstance(tests, dict) else {}

    def number(name: str) -> int:
        value = counts.get(name)
        return value if isinstance(value, int) else 0

    duration = counts.get("duration")
    note = counts.get("note")
    project = raw.get("project")
    return SummaryJob(
        id=str(raw.get("id", "")),
        project=project if isinstance(project, str) else None,
        tests=Counts(
            passed=number("passed"),
            failed=number("failed"),
            errors=number("errors"),
            skipped=number("skipped"),
            xfailed=number("xfailed"),
            xpassed=number("xpassed"),
            duration=float(duration) if isinstance(duration, int | float) else 0.0,
            note=note if isinstance(note, str) else None,
        ),
    )


def decode_rows(raw: object) -> list[Row]:
    """Results or flaky tests from their JSON list; entries without a node id are skipped."""
    rows: list[Row] = []
    for item in cast("list[object]", raw) if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        entry = cast("dict[str, object]", item)
        nodeid, outcome = entry.get("nodeid"), entry.get("outcome")
        message, project = entry.get("message"), entry.get("project")
        if isinstance(nodeid, str):
            rows.append(
                Row(
                    nodeid=nodeid,
                    outcome=outcome if isinstance(outcome, str) else "",
                    message=message if isinstance(message, str) else None,
                    project=project if isinstance(project, str) else None,
                )
            )
    return rows


MAX_LISTED = 20
MAX_MESSAGE_CHARS = 160
_LABELS = {"failed": "FAILED", "error": "ERROR", "xpassed": "XPASS", "xfailed": "XFAIL"}


def one_line(text: str | None, limit: int = MAX_MESSAGE_CHARS) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def counts_line(counts: CountsLike) -> str:
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


def result_line(result: ResultLike, *, flaky: bool = False) -> str:
    outcome = str(result.outcome)
    label = _LABELS.get(outcome, outcome.upper())
    message = one_line(result.message)
    return f"{label} {result.nodeid}{' [known flaky]' if flaky else ''}" + (
        f" - {message}" if message else ""
    )


def summary_lines(
    job: JobLike, failures: Sequence[ResultLike], flaky: Iterable[FlakyLike]
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
