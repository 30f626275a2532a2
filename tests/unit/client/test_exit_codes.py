"""Exit codes: pytest's own 0-5 pass through, everything else of ours lies outside them."""

from __future__ import annotations

import pytest

from ci_client import exit_codes
from ci_client.errors import (
    ArchiveError,
    AuthRejected,
    ClientError,
    ConfigError,
    JobNotFound,
    RequestRejected,
    ServerError,
    ServerUnreachable,
    StreamLost,
    UploadRejected,
)
from ci_client.exit_codes import ExitCode, exit_code_for_error, outcome_for_job
from ci_common.models import JobConclusion


@pytest.mark.parametrize("code", range(6))
def test_pytest_codes_pass_through(code: int) -> None:
    conclusion = "success" if code == 0 else "failure"
    outcome = outcome_for_job(job_id="j", conclusion=conclusion, exit_code=code, error=None)
    assert outcome.exit_code == code
    assert outcome.message is None


@pytest.mark.parametrize(
    ("conclusion", "code", "words"),
    [
        ("timed_out", 124, "timed out"),
        ("cancelled", 130, "cancelled"),
        ("error", 70, "could not run: pip could not install nosuchpkg"),
    ],
)
def test_conclusions_without_a_pytest_code(conclusion: str, code: int, words: str) -> None:
    outcome = outcome_for_job(
        job_id="j", conclusion=conclusion, exit_code=None, error="pip could not install nosuchpkg"
    )
    assert outcome.exit_code == code
    assert outcome.message is not None
    assert words in outcome.message


def test_error_without_a_message_still_says_where_to_look() -> None:
    outcome = outcome_for_job(job_id="abc", conclusion="error", exit_code=None, error=None)
    assert outcome.message is not None
    assert "ci logs abc" in outcome.message


@pytest.mark.parametrize(("exit_code", "signal"), [(137, "SIGKILL"), (134, "SIGABRT"), (159, "31")])
def test_tests_killed_by_a_signal_exit_137_not_tests_failed(exit_code: int, signal: str) -> None:
    outcome = outcome_for_job(job_id="j", conclusion="failure", exit_code=exit_code, error=None)
    assert outcome.exit_code == ExitCode.KILLED == 137
    assert outcome.message is not None
    assert str(exit_code) in outcome.message and signal in outcome.message


def test_another_code_outside_pytests_is_still_tests_failed() -> None:
    outcome = outcome_for_job(job_id="j", conclusion="failure", exit_code=7, error=None)
    assert outcome.exit_code == 1
    assert outcome.message is not None and "7" in outcome.message


def test_every_conclusion_is_mapped() -> None:
    for conclusion in JobConclusion:
        outcome = outcome_for_job(job_id="j", conclusion=conclusion.value, exit_code=0, error="x")
        assert outcome.exit_code != ExitCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 78),
        (ArchiveError("x"), 65),
        (UploadRejected("x", status_code=413), 65),
        (RequestRejected("x", status_code=422), 65),
        (JobNotFound("x", job_id="j"), 66),
        (ServerUnreachable("x"), 69),
        (StreamLost("x", job_id="j"), 69),
        (ServerError("x", status_code=500), 69),
        (AuthRejected("x"), 77),
    ],
)
def test_client_errors_map_to_sysexits(error: ClientError, code: int) -> None:
    assert exit_code_for_error(error) == code


def test_our_codes_never_collide_with_pytests() -> None:
    ours = {code for code in ExitCode if code not in (ExitCode.SUCCESS, ExitCode.TESTS_FAILED)}
    assert not ours & set(range(6))


def test_the_docstring_table_lists_every_code() -> None:
    doc = exit_codes.__doc__ or ""
    for code in ExitCode:
        assert f"\n    {int(code):<4}  " in doc or f"\n    {int(code)}     " in doc, code
