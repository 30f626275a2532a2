"""The pieces every `/metrics` shares: the token check, the queue's age, errors counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from ci_common.errors import DatabaseUnavailableError
from ci_common.metrics import QueueGauges, finished_counter, render, token_accepts
from ci_common.models import EngineStatus
from ci_common.queue_stats import QueueStats


@pytest.mark.parametrize(
    ("authorization", "accepted"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("Bearer wrong", False),
        ("Bearer ", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        (None, False),
    ],
)
def test_a_token_is_needed_when_one_is_set(authorization: str | None, accepted: bool) -> None:
    assert token_accepts(authorization, "s3cret") is accepted


@pytest.mark.parametrize("authorization", [None, "Bearer anything"])
def test_without_a_token_metrics_are_open(authorization: str | None) -> None:
    assert token_accepts(authorization, None)


def test_the_oldest_queued_jobs_age_is_zero_with_nothing_queued() -> None:
    now = datetime.now(UTC)
    waiting = QueueStats(
        queued=1, running=0, oldest_queued_at=now - timedelta(seconds=42), log_bytes=0
    )
    assert waiting.oldest_queued_age(now) == 42
    assert (
        QueueStats(queued=0, running=0, oldest_queued_at=None, log_bytes=0).oldest_queued_age(now)
        == 0
    )


class _Unreachable:
    async def queue_stats(self) -> QueueStats:
        raise DatabaseUnavailableError("the database is not reachable")

    async def record_engine(self, name: str, *, capacity: int) -> None:
        raise DatabaseUnavailableError("the database is not reachable")

    async def list_engines(self) -> list[EngineStatus]:
        raise DatabaseUnavailableError("the database is not reachable")


async def test_a_database_error_is_counted_and_the_last_values_kept() -> None:
    registry = CollectorRegistry()
    gauges = QueueGauges(registry)
    gauges.queued.set(5)

    await gauges.refresh(_Unreachable())

    assert registry.get_sample_value("ci_repository_errors_total") == 1
    assert registry.get_sample_value("ci_jobs_queued") == 5


def test_every_conclusion_is_a_series_from_the_start() -> None:
    registry = CollectorRegistry()
    finished_counter(registry)
    text = render(registry).decode()
    for conclusion in ("success", "failure", "error", "cancelled", "timed_out"):
        assert f'ci_jobs_finished_total{{conclusion="{conclusion}"}} 0.0' in text
