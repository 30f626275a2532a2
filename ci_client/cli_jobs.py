"""`ci wait`, `ci list`, `ci status`, `ci logs`, `ci cancel`, `ci whoami`: following and
looking at jobs.

A job is named by its full id or by a prefix of at least 8 characters (what `ci list` shows);
the server resolves a prefix over all of the caller's jobs (`GET /jobs/{prefix}`, 409 when two
jobs share it), so the CLI never guesses from a page of recent jobs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from ci_client.cli_state import (
    CLIState,
    connection_options,
    echo_json,
    finish,
    json_option,
    pass_state,
    say,
)
from ci_client.errors import ClientError
from ci_client.job_refs import job_ref, resolve_job_id
from ci_client.output import colour_wanted

if TYPE_CHECKING:
    from ci_client.client import CIClient
    from ci_client.events import Event

JOB_STATUSES = ("queued", "running", "completed")
"""The values of `ci_common.models.JobStatus`, spelled out so `ci --help` needs no pydantic."""
JOB_CONCLUSIONS = ("success", "failure", "error", "cancelled", "timed_out")
"""The values of `ci_common.models.JobConclusion`, likewise."""


def follow(
    client: CIClient,
    events: Iterator[Event],
    *,
    job_id: str | None,
    as_json: bool,
    quiet: bool = False,
) -> int:
    """Follow a job to its end: its log to stdout and the failure summary to stderr, or with
    `as_json` only the finished job as JSON, or with `quiet` nothing (the log goes nowhere);
    returns the exit code `ci` ends with."""
    from ci_client.follow import follow_job
    from ci_client.output import LogWriter

    seen: list[str] = [job_id] if job_id else []

    def watched() -> Iterator[Event]:
        for event in events:
            if event.type == "job_id":
                seen.append(event.job_id)
            yield event

    def lookup_error(job: str) -> str | None:
        try:
            return client.get_job(job).error
        except ClientError:
            return None

    def summarize(job: str) -> None:
        from ci_client.cli_tests import print_summary

        try:
            print_summary(client, job)
        except ClientError as exc:
            say(f"(the test summary could not be fetched: {exc})", "yellow")

    if not as_json and not quiet:
        out = LogWriter(sys.stdout, keep_colour=colour_wanted(sys.stdout, os.environ))
        return follow_job(
            events,
            job_id=job_id,
            out=out,
            say=say,
            lookup_error=lookup_error,
            summarize=summarize,
        )
    with open(os.devnull, "w", encoding="utf-8") as nowhere:
        code = follow_job(
            watched(),
            job_id=job_id,
            out=LogWriter(nowhere, keep_colour=False),
            say=say,
            lookup_error=lookup_error,
        )
    if as_json and seen:
        echo_json(client.get_job(seen[-1]).model_dump(mode="json"))
    return code


@click.command(short_help="Follow a job to its end; exit with its code.")
@click.argument("job_id")
@click.option("--all", "replay", is_flag=True, help="Replay the log from the start first.")
@json_option("Print only the finished job as JSON, not its log.")
@connection_options
@pass_state
def wait(state: CLIState, job_id: str, replay: bool, as_json: bool) -> None:
    """Reattach to job JOB_ID, follow it to the end, and exit with its code.

    Forward-only by default (new output from now on); --all replays the whole log first.
    """
    with state.client() as client:
        job_id = resolve_job_id(client, job_id)
        say(f"Following job {job_id} (Ctrl-C detaches; the job goes on)")
        events = client.stream(job_id, from_beginning=replay)
        finish(follow(client, events, job_id=job_id, as_json=as_json))


@click.command("list")
@json_option("Print the full jobs as a JSON array.")
@click.option("--status", type=click.Choice(JOB_STATUSES), help="Only jobs in this status.")
@click.option(
    "--conclusion", type=click.Choice(JOB_CONCLUSIONS), help="Only jobs that ended this way."
)
@click.option("--project", metavar="NAME", help="Only jobs of this project.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@connection_options
@pass_state
def list_jobs(
    state: CLIState,
    as_json: bool,
    status: str | None,
    conclusion: str | None,
    project: str | None,
    limit: int,
) -> None:
    """Your jobs, newest first."""
    with state.client() as client:
        jobs = client.list_jobs(status=status, project=project, limit=limit, conclusion=conclusion)
    if as_json:
        echo_json([job.model_dump(mode="json") for job in jobs])
        return
    if not jobs:
        filtered = status is not None or project is not None or conclusion is not None
        say("No jobs." if filtered else "No jobs yet. Submit one with `ci submit test`.")
        return
    from ci_client.render import print_job_table

    print_job_table(jobs, stream=sys.stdout, colour=colour_wanted(sys.stdout, os.environ))


@click.command()
@click.argument("job_id")
@json_option("Print the job as JSON.")
@connection_options
@pass_state
def status(state: CLIState, job_id: str, as_json: bool) -> None:
    """Show one job: status, conclusion, exit code, times, error."""
    from ci_client.render import job_card

    with state.client() as client:
        job = client.get_job(job_ref(job_id))
    if as_json:
        echo_json(job.model_dump(mode="json"))
    else:
        click.echo("\n".join(job_card(job)))


@click.command(short_help="Print a job's log; -f follows it.")
@click.argument("job_id")
@click.option(
    "-f", "--follow", "follow_log", is_flag=True, help="Then follow it to the end (as ci wait)."
)
@json_option('Print {"id": ..., "log": ...} instead of the bare log.')
@connection_options
@pass_state
def logs(state: CLIState, job_id: str, follow_log: bool, as_json: bool) -> None:
    """Print the whole log of job JOB_ID so far.

    With -f, follow it live to the end and exit with the job's code, like `ci wait --all`.
    """
    from ci_client.output import LogWriter

    with state.client() as client:
        if follow_log:
            full_id = resolve_job_id(client, job_id)
            if as_json:
                raise click.UsageError("--json prints a log that is complete; drop -f or --json")
            events = client.stream(full_id, from_beginning=True)
            finish(follow(client, events, job_id=full_id, as_json=False))
        ref = job_ref(job_id)
        if as_json:
            full_id = resolve_job_id(client, ref)
            echo_json({"id": full_id, "log": client.logs(full_id)})
            return
        text = client.logs(ref)
    out = LogWriter(sys.stdout, keep_colour=colour_wanted(sys.stdout, os.environ))
    out.write(text)
    out.finish()


@click.command(short_help="Cancel a job.")
@click.argument("job_id")
@json_option("Print the job, as it is after the request, as JSON.")
@connection_options
@pass_state
def cancel(state: CLIState, job_id: str, as_json: bool) -> None:
    """Cancel job JOB_ID (a queued job ends at once, a running one is stopped)."""
    with state.client() as client:
        job = client.cancel(job_ref(job_id))
    if as_json:
        echo_json(job.model_dump(mode="json"))
    elif job.conclusion is None:
        say(f"Cancellation of job {job.id} requested; `ci wait {job.id}` follows it to the end.")
    elif job.conclusion.value == "cancelled":
        say(f"Job {job.id} is cancelled.")
    else:
        say(f"Job {job.id} had already completed ({job.conclusion.value}); nothing to cancel.")


@click.command(short_help="Show who your API key belongs to.")
@json_option("Print the user as JSON.")
@connection_options
@pass_state
def whoami(state: CLIState, as_json: bool) -> None:
    """Show the user your API key belongs to (`GET /whoami`): a quick check of the key."""
    with state.client() as client:
        user = client.whoami()
    if as_json:
        echo_json(user)
    else:
        click.echo(f"{user['name']} <{user['email']}>  (user {user['id']}) at {client.server_url}")
