"""Exit codes of the `ci` command, and the one place that maps outcomes and errors to them.

`ci submit test` and `ci wait` exit with pytest's own code when the job ran, so a script can
treat `ci` like a local `pytest` run. Every code this tool adds lies outside pytest's 0-5, taken
from well-known conventions (`timeout`'s 124, 128+SIGINT, BSD sysexits.h), so a script can tell
our problems from pytest's:

    code  meaning                                          convention
    0     tests passed                                     pytest
    1     tests failed                                     pytest
    2     pytest was interrupted                           pytest
    3     pytest internal error                            pytest
    4     pytest usage error (bad pytest options/config)   pytest
    5     no tests were collected                          pytest
    64    usage error of `ci` (bad option or argument)     EX_USAGE
    65    bad input: the project cannot be packed or the   EX_DATAERR
          server rejected the upload or request
    66    job not found (wrong id, or another user's job)  EX_NOINPUT
    69    server unreachable, or it failed (5xx)           EX_UNAVAILABLE
    70    the job could not run (conclusion `error`,       EX_SOFTWARE
          e.g. dependencies failed to install)
    77    API key rejected by the server (HTTP 401)        EX_NOPERM
    78    no API key configured / bad config file          EX_CONFIG
    124   the job timed out                                timeout(1)
    137   the tests were killed by a signal (out of        128 + SIGKILL
          memory, or another signal: the job's exit_code
          is 128 + its number)
    130   the job was cancelled, or you pressed Ctrl-C     128 + SIGINT
          (the job goes on; `ci wait <id>` reattaches)

The same table is in `ci --help` and in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ci_client.errors import (
    ArchiveError,
    AuthRejected,
    ClientError,
    ConfigError,
    JobNotFound,
    JobRequestError,
    RequestRejected,
    ServerError,
    ServerUnreachable,
)


class ExitCode(IntEnum):
    """The codes `ci` adds to pytest's 0-5 (see the module docstring for the table)."""

    SUCCESS = 0
    TESTS_FAILED = 1
    USAGE = 64
    BAD_INPUT = 65
    JOB_NOT_FOUND = 66
    UNAVAILABLE = 69
    JOB_ERROR = 70
    KEY_REJECTED = 77
    CONFIG = 78
    TIMED_OUT = 124
    CANCELLED = 130
    KILLED = 137
    """The tests were killed by a signal; the job's own exit code says which (128 + N)."""


INTERRUPTED = ExitCode.CANCELLED
"""Ctrl-C shares 130 with a cancelled job: both mean "stopped by a person"."""

PYTEST_CODES = range(6)
SIGNAL_CODES = range(129, 129 + 64)
"""A job's exit code of 128 + N: its tests were killed by signal N."""
SIGNAL_NAMES = {6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


@dataclass(frozen=True)
class Outcome:
    """How `ci` ends for a finished job: the exit code and, unless the tests simply ran, a
    message for stderr that says what happened and what to do."""

    exit_code: int
    message: str | None


def outcome_for_job(
    *, job_id: str, conclusion: str | None, exit_code: int | None, error: str | None
) -> Outcome:
    """The exit code and message for a completed job (`conclusion` is a `JobConclusion` value;
    plain strings keep this module free of pydantic for a fast start-up)."""
    if conclusion in ("success", "failure"):
        if exit_code is not None and exit_code in PYTEST_CODES:
            return Outcome(exit_code, None)
        if conclusion == "success":
            return Outcome(ExitCode.SUCCESS, None)
        if exit_code is not None and exit_code in SIGNAL_CODES:
            number = exit_code - 128
            name = SIGNAL_NAMES.get(number, f"signal {number}")
            return Outcome(
                ExitCode.KILLED,
                f"job {job_id}: the tests were killed by {name} (exit code {exit_code}): out of "
                "memory, or a test or the process limit ended them; the log's last lines say "
                f"what is known (`ci logs {job_id}`)",
            )
        detail = f"pytest exited with code {exit_code}" if exit_code is not None else "no code"
        return Outcome(
            ExitCode.TESTS_FAILED,
            f"job {job_id} failed ({detail}, outside pytest's 0-5: the test process was likely "
            "killed, e.g. out of memory); see the log above or `ci logs " + job_id + "`",
        )
    if conclusion == "timed_out":
        return Outcome(
            ExitCode.TIMED_OUT,
            f"job {job_id} timed out and was stopped; make the tests faster or ask the admin to "
            "raise CI_JOB_TIMEOUT",
        )
    if conclusion == "cancelled":
        return Outcome(ExitCode.CANCELLED, f"job {job_id} was cancelled")
    if conclusion == "error":
        why = error or "the server gave no reason"
        return Outcome(
            ExitCode.JOB_ERROR,
            f"job {job_id} could not run: {why}\n`ci logs {job_id}` shows its whole log",
        )
    return Outcome(
        ExitCode.UNAVAILABLE,
        f"job {job_id} ended in a way this client does not know ({conclusion!r}); "
        f"`ci status {job_id}` shows it; upgrade the client if the server is newer",
    )


def exit_code_for_error(error: ClientError) -> int:
    """The exit code of a client error; the message is `str(error)`."""
    match error:
        case ConfigError():
            return ExitCode.CONFIG
        case JobRequestError():
            return ExitCode.USAGE
        case ArchiveError() | RequestRejected():
            return ExitCode.BAD_INPUT
        case JobNotFound():
            return ExitCode.JOB_NOT_FOUND
        case AuthRejected():
            return ExitCode.KEY_REJECTED
        case ServerUnreachable() | ServerError():
            return ExitCode.UNAVAILABLE
        case _:
            return ExitCode.UNAVAILABLE
