"""How jobs look on the terminal: the `ci list` table and the `ci status` card.

Times are shown in the user's local time zone (the API speaks UTC); durations as `1m 05s`.
`rich` is imported only inside `print_job_table`, the one place that needs it, because it costs
tens of milliseconds at start-up and every other command would pay for it.
"""

from __future__ import annotations

import io
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ci_common.api import JobView

SHORT_ID_LENGTH = 8

STATUS_STYLES = {"queued": "yellow", "running": "cyan", "completed": "default"}
CONCLUSION_STYLES = {
    "success": "green",
    "failure": "red",
    "error": "magenta",
    "cancelled": "dim",
    "timed_out": "red",
}


def short_id(job_id: str) -> str:
    return job_id[:SHORT_ID_LENGTH]


def format_time(moment: datetime | None) -> str:
    """Local time, to the second; `-` when unset."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_seconds(seconds: float) -> str:
    """`0.4s`, `12s`, `1m 05s`, `2h 03m`."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def job_duration(job: JobView, *, now: datetime | None = None) -> str:
    """How long the job ran (or has been running, marked with `…`); `-` if it never started."""
    if job.started_at is None:
        return "-"
    if job.finished_at is not None:
        return format_seconds((job.finished_at - job.started_at).total_seconds())
    now = now or datetime.now(UTC)
    return format_seconds(max(0.0, (now - job.started_at).total_seconds())) + "…"


SHORT_COMMIT_LENGTH = 10


def short_commit(job: JobView) -> str:
    """`1a2b3c4d5e*`: the commit's first digits, `*` when the tree had uncommitted changes;
    `-` when the files did not come from a git checkout. One word, as scripts split rows."""
    if job.git is None:
        return "-"
    return job.git.commit[:SHORT_COMMIT_LENGTH] + ("*" if job.git.dirty else "")


def describe_commit(job: JobView) -> str:
    """The status card's commit: in full, its branch, and whether the tree differed."""
    if job.git is None:
        return "- (not a git checkout)"
    branch = f" on {job.git.branch}" if job.git.branch else " (detached HEAD)"
    changes = ", with uncommitted changes" if job.git.dirty else ""
    return f"{job.git.commit}{branch}{changes}"


def print_job_table(jobs: list[JobView], *, stream: TextIO, colour: bool) -> None:
    """The `ci list` table: short id, project, commit, branch, status, conclusion, test
    counts, created, duration."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = (
        "ID",
        "PROJECT",
        "COMMIT",
        "BRANCH",
        "STATUS",
        "CONCLUSION",
        "TESTS",
        "CREATED",
        "DURATION",
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    for job in jobs:
        conclusion = job.conclusion.value if job.conclusion else "-"
        table.add_row(
            short_id(job.id),
            escape(job.project or "-"),
            escape(short_commit(job)),
            escape(job.git.branch if job.git and job.git.branch else "-"),
            f"[{STATUS_STYLES.get(job.status.value, 'default')}]{job.status.value}[/]",
            f"[{CONCLUSION_STYLES.get(conclusion, 'default')}]{conclusion}[/]",
            test_counts(job),
            format_time(job.created_at),
            job_duration(job),
        )
    if colour:
        Console(file=stream, force_terminal=True, highlight=False).print(table)
        return
    # Plain text for pipes and files: no styles, no padding at line ends (scripts split on
    # whitespace, and trailing blanks are noise in a diff).
    buffer = io.StringIO()
    Console(file=buffer, no_color=True, highlight=False, width=200).print(table)
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
    stream.flush()


def test_counts(job: JobView) -> str:
    """`12 passed 2 failed` for `ci list` (errors count as failed there), `-` without any."""
    tests = job.tests
    if not tests.total:
        return "-"
    failed = tests.failed + tests.errors
    return f"{tests.passed} passed" + (f" [red]{failed} failed[/]" if failed else "")


def job_card(job: JobView) -> list[str]:
    """The `ci status` lines: every field a user asks about, aligned."""
    rows = [
        ("job", job.id),
        ("project", job.project or "-"),
        ("commit", describe_commit(job)),
        ("python", job.python or "-"),
        ("engine", job.engine or "-"),
        ("status", job.status.value + (" (cancel requested)" if _cancelling(job) else "")),
        ("conclusion", job.conclusion.value if job.conclusion else "-"),
        ("exit code", str(job.exit_code) if job.exit_code is not None else "-"),
        ("created", format_time(job.created_at)),
        ("started", format_time(job.started_at)),
        ("finished", format_time(job.finished_at)),
        ("duration", job_duration(job)),
    ]
    if job.pytest_args:
        rows.append(("pytest args", shlex.join(job.pytest_args)))
    if job.env:
        rows.append(("environment", f"{', '.join(sorted(job.env))} (values: --json)"))
    if job.error:
        rows.append(("error", job.error))
    width = max(len(label) for label, _ in rows)
    return [f"{label + ':':<{width + 1}} {value}" for label, value in rows]


def _cancelling(job: JobView) -> bool:
    return job.cancel_requested and job.conclusion is None
