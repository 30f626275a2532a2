"""How jobs are shown: durations, times, the status card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ci_client.render import format_seconds, format_time, job_card, job_duration
from ci_common.api import JobView
from ci_common.models import JobConclusion, JobStatus

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def view(**changes: object) -> JobView:
    fields: dict[str, object] = {
        "id": "6f1c2a9e-8a7b-4c3d-9e0f-112233445566",
        "status": JobStatus.COMPLETED,
        "conclusion": JobConclusion.SUCCESS,
        "success": True,
        "exit_code": 0,
        "error": None,
        "cancel_requested": False,
        "created_at": START,
        "started_at": START + timedelta(seconds=2),
        "finished_at": START + timedelta(seconds=3727),
    }
    fields.update(changes)
    return JobView.model_validate(fields)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.42, "0.4s"), (9.96, "10.0s"), (12.7, "12s"), (65, "1m 05s"), (3725, "1h 02m")],
)
def test_format_seconds(seconds: float, shown: str) -> None:
    assert format_seconds(seconds) == shown


def test_durations_of_finished_running_and_queued_jobs() -> None:
    assert job_duration(view()) == "1h 02m"
    running = view(status=JobStatus.RUNNING, conclusion=None, finished_at=None)
    assert job_duration(running, now=START + timedelta(seconds=7)) == "5.0s…"
    assert job_duration(view(started_at=None, finished_at=None)) == "-"


def test_times_are_local_and_unset_is_a_dash() -> None:
    assert format_time(None) == "-"
    assert format_time(START) == START.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_the_card_shows_the_error_and_a_pending_cancel() -> None:
    card = job_card(
        view(
            status=JobStatus.RUNNING,
            conclusion=None,
            exit_code=None,
            finished_at=None,
            cancel_requested=True,
        )
    )
    assert "status:     running (cancel requested)" in card
    failed = job_card(view(conclusion=JobConclusion.ERROR, error="image missing"))
    assert failed[-1] == "error:      image missing"


def test_the_card_says_which_engine_ran_the_job() -> None:
    assert "engine:     second" in job_card(view(engine="second"))
    assert "engine:     -" in job_card(view())  # still queued: no engine yet
