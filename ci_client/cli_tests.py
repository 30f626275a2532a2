"""`ci tests`, `ci flaky`, and the failure summary `ci submit test` and `ci wait` end with:
per-test results as data.

The rows come from the server (`GET /jobs/{id}/tests`, `GET /tests/flaky`); the lines they
become are `test_summary`'s. The summary goes to stderr with the other words about the job, so
stdout stays the tests' own output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import click

from ci_client.cli_state import (
    CLIState,
    connection_options,
    echo_json,
    json_option,
    pass_state,
    say,
)
from ci_client.job_refs import resolve_job_id

if TYPE_CHECKING:
    from ci_client.client import CIClient
    from ci_client.test_summary import Row


def print_summary(client: CIClient, job_id: str) -> None:
    """Failing tests (one line each, known-flaky ones marked) and the counts, on stderr.

    Read as plain JSON (`test_summary`'s dataclasses): this runs at the end of every submit,
    which must not wait for pydantic to import."""
    from ci_client.test_summary import decode_job, decode_rows, summary_lines

    raw = client.get_json(f"/jobs/{job_id}")
    job = decode_job(cast("dict[str, object]", raw) if isinstance(raw, dict) else {})
    failures: list[Row] = []
    if job.tests.failed + job.tests.errors:
        page = client.get_json(
            f"/jobs/{job_id}/tests", params={"outcome": ["failed", "error"], "limit": 500}
        )
        results: object = (
            cast("dict[str, object]", page).get("results") if isinstance(page, dict) else None
        )
        failures = decode_rows(results)
    flaky: list[Row] = []
    if failures and job.project:
        flaky = decode_rows(client.get_json("/tests/flaky", params={"project": job.project}))
    for line in summary_lines(job, failures, flaky):
        colour = "red" if line.startswith(("  FAILED", "  ERROR")) else None
        say(line, colour)


@click.command(short_help="List a job's per-test results.")
@click.argument("job_id")
@click.option("--failed", "failed_only", is_flag=True, help="Only tests that failed or errored.")
@json_option("Print the results as a JSON array.")
@connection_options
@pass_state
def tests(state: CLIState, job_id: str, failed_only: bool, as_json: bool) -> None:
    """The per-test results of job JOB_ID so far, in the order they were reported, then the
    counts (current while the job runs)."""
    from ci_client.test_summary import counts_line, result_line

    with state.client() as client:
        job_id = resolve_job_id(client, job_id)
        results = client.list_tests(job_id, failed_only=failed_only)
        job = None if as_json else client.get_job(job_id)
    if job is None:
        echo_json([result.model_dump(mode="json") for result in results])
        return
    for result in results:
        click.echo(f"{result_line(result)} ({result.duration:.3f}s)")
    say(f"Tests: {counts_line(job.tests)}")
    if job.tests.note:
        say(f"Note: {job.tests.note}", "yellow")


@click.command(short_help="List your flaky tests.")
@click.option("--project", metavar="NAME", help="Only this project's tests.")
@json_option("Print them as a JSON array.")
@connection_options
@pass_state
def flaky(state: CLIState, project: str | None, as_json: bool) -> None:
    """Your flaky tests: those that passed and failed on the same content (the same files,
    pytest arguments and Python version)."""
    from ci_client.test_summary import flaky_lines

    with state.client() as client:
        found = client.flaky_tests(project=project)
    if as_json:
        echo_json([test.model_dump(mode="json") for test in found])
        return
    if not found:
        say("No flaky tests found.")
        return
    for line in flaky_lines(found):
        click.echo(line)
