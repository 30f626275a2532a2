"""Following a job on the terminal, shared by `ci submit test` and `ci wait`.

The job's output goes to stdout as it arrives; everything about the job (its id, status
changes, how it ended) goes to stderr, so `ci submit test > out.txt` captures exactly the test
output. The job id is printed as soon as the server confirms it, so a user can always reattach.
Ctrl-C only detaches: the job goes on on the server, and the message says how to come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from ci_client.exit_codes import INTERRUPTED, Outcome, outcome_for_job
from ci_client.output import LogWriter
from ci_client.render import format_seconds

if TYPE_CHECKING:
    from ci_client.events import CompleteEvent, Event

Say = Callable[[str, str | None], None]
"""Print a status line to stderr, in a colour (or None) that is dropped when unwanted."""


def follow_job(
    events: Iterator[Event],
    *,
    job_id: str | None,
    out: LogWriter,
    say: Say,
    lookup_error: Callable[[str], str | None],
    summarize: Callable[[str], None] | None = None,
) -> int:
    """Consume a job's stream to the end; return the exit code `ci` should end with.

    `lookup_error` fetches the job's `error` message when the `complete` event lacks it, so a
    job that could not run always tells the user why; `summarize` prints the job's test
    results summary before the last line, for a job whose pytest ran."""
    started = time.monotonic()
    try:
        for event in events:
            # Dispatch on the `type` tag, not the classes, so this module does not import the
            # pydantic models before the upload is on its way (see `ci_client.stream`).
            if event.type == "job_id":
                job_id = event.job_id
                say(f"Job submitted: {job_id}  (Ctrl-C detaches; it goes on)", None)
            elif event.type == "status":
                say(f"Job {job_id} is {event.status}", "cyan")
            elif event.type == "log":
                out.write(event.data)
            else:
                out.finish()
                if event.conclusion == "error" and not event.error and job_id:
                    event = replace(event, error=lookup_error(job_id))
                if summarize is not None and job_id and event.conclusion != "error":
                    summarize(job_id)
                return _report_end(
                    event, job_id=job_id or "?", elapsed=time.monotonic() - started, say=say
                )
    except KeyboardInterrupt:
        out.finish()
        if job_id is None:
            say(
                "Interrupted before the server confirmed the job; `ci list` shows whether it "
                "was created.",
                "yellow",
            )
        else:
            say(
                f"Detached. Job {job_id} goes on on the server; `ci wait {job_id}` reattaches, "
                f"`ci cancel {job_id}` stops it.",
                "yellow",
            )
        return INTERRUPTED
    raise AssertionError("CIClient streams end with a CompleteEvent or an error")


def _report_end(event: CompleteEvent, *, job_id: str, elapsed: float, say: Say) -> int:
    outcome: Outcome = outcome_for_job(
        job_id=job_id,
        conclusion=event.conclusion,
        exit_code=event.exit_code,
        error=event.error,
    )
    took = format_seconds(elapsed)
    if outcome.message is not None:
        say(outcome.message, "red")
    elif event.success:
        say(f"Job {job_id} passed (followed for {took})", "green")
    else:
        say(
            f"Job {job_id} {_failure_words(event.exit_code)} (pytest exit code "
            f"{event.exit_code}; followed for {took})",
            "red",
        )
    return outcome.exit_code


def _failure_words(exit_code: int | None) -> str:
    return {
        1: "failed: some tests failed",
        2: "failed: pytest was interrupted",
        3: "failed: pytest hit an internal error",
        4: "failed: pytest was used wrongly (options or configuration)",
        5: "failed: no tests were collected",
    }.get(exit_code or 1, "failed")
