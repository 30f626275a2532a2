"""The queue's numbers `/metrics` reports, read from the database on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from ci_common.metrics import QueueGauges
from ci_common.models import JobConclusion
from ci_common.queue_stats import QueueStats
from ci_common.repository import Repository


async def test_an_empty_database_has_nothing_queued_running_or_logged(repo: Repository) -> None:
    assert await repo.queue_stats() == QueueStats(
        queued=0, running=0, oldest_queued_at=None, log_bytes=0
    )


async def test_counts_follow_jobs_through_their_states(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    first = await repo.create_job(user_id=user.id, archive=b"1")
    second = await repo.create_job(user_id=user.id, archive=b"2")
    third = await repo.create_job(user_id=user.id, archive=b"3")

    stats = await repo.queue_stats()
    assert (stats.queued, stats.running) == (3, 0)
    assert stats.oldest_queued_at == first.created_at

    assert await repo.mark_running(first.id, container_id=None)
    await repo.append_log(first.id, "héllo\n", cursor=None)  # 7 bytes in UTF-8
    await repo.append_log(first.id, "world\n", cursor=None)
    stats = await repo.queue_stats()
    assert (stats.queued, stats.running, stats.log_bytes) == (2, 1, 13)
    assert stats.oldest_queued_at == second.created_at

    await repo.complete_job(first.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    await repo.request_cancel(second.id)
    stats = await repo.queue_stats()
    assert (stats.queued, stats.running, stats.log_bytes) == (1, 0, 13)
    assert stats.oldest_queued_at == third.created_at


async def test_the_gauges_show_the_database_and_the_oldest_jobs_age(repo: Repository) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    job = await repo.create_job(user_id=user.id, archive=b"1")
    await repo.append_log(job.id, "x" * 100, cursor=None)
    registry = CollectorRegistry()
    gauges = QueueGauges(registry)

    await gauges.refresh(repo)

    assert registry.get_sample_value("ci_jobs_queued") == 1
    assert registry.get_sample_value("ci_jobs_running") == 0
    assert registry.get_sample_value("ci_log_bytes_stored") == 100
    age = registry.get_sample_value("ci_oldest_queued_job_age_seconds")
    assert age is not None
    assert 0 <= age <= (datetime.now(UTC) - job.created_at + timedelta(seconds=1)).total_seconds()
    assert registry.get_sample_value("ci_repository_errors_total") == 0


async def test_each_engine_has_its_capacity_running_jobs_and_last_heartbeat(
    repo: Repository,
) -> None:
    user = await repo.create_user(name="Ada", email="ada@example.org")
    job = await repo.create_job(user_id=user.id, archive=b"1")
    await repo.record_engine("default", capacity=2)
    await repo.record_engine("second", capacity=3)
    assert await repo.mark_running(job.id, container_id=None, engine="second")
    registry = CollectorRegistry()

    await QueueGauges(registry).refresh(repo)

    def sample(name: str, engine: str) -> float | None:
        return registry.get_sample_value(name, {"engine": engine})

    assert sample("ci_engine_capacity", "default") == 2
    assert sample("ci_engine_capacity", "second") == 3
    assert sample("ci_engine_running_jobs", "default") == 0
    assert sample("ci_engine_running_jobs", "second") == 1
    seen = sample("ci_engine_last_seen_timestamp_seconds", "second")
    assert seen is not None and abs(seen - datetime.now(UTC).timestamp()) < 60
