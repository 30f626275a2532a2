"""What every process's `/metrics` shares: the queue's gauges, the repository error counter,
the token check and the Prometheus text rendering.

Each process (each app, in tests) owns one `CollectorRegistry`, never prometheus_client's
global one, so several apps in one test process do not collide and a registry holds exactly
its process's metrics. The queue's gauges are read from the database when scraped
(`QueueGauges.refresh`), so every server replica and the controller agree whoever changed the
jobs; counters and histograms count what this process did (sum them over processes).
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from ci_common.errors import StorageError
from ci_common.models import JobConclusion
from ci_common.repository import EngineRepository, QueueStatsRepository

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format every Prometheus reads (our names need none of 1.0.0's escaping,
which is prometheus_client's newest default)."""

UNAUTHORIZED_DETAIL = (
    "/metrics needs `Authorization: Bearer <token>` with the token set in CI_METRICS_TOKEN"
)


class MetricsRepository(QueueStatsRepository, EngineRepository, Protocol):
    """What a scrape reads from the database: the queue, and each engine's heartbeat."""


class QueueGauges:
    """The numbers every process reports from the database, plus its own repository errors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queued = Gauge("ci_jobs_queued", "jobs waiting to run", registry=registry)
        self.running = Gauge("ci_jobs_running", "jobs running", registry=registry)
        self.oldest_queued_age = Gauge(
            "ci_oldest_queued_job_age_seconds",
            "seconds the oldest queued job has waited (0: nothing queued)",
            registry=registry,
        )
        self.log_bytes = Gauge(
            "ci_log_bytes_stored", "bytes of job log stored in the database", registry=registry
        )
        self.engine_capacity = Gauge(
            "ci_engine_capacity",
            "jobs an engine's controller runs at once, as it last reported",
            ["engine"],
            registry=registry,
        )
        self.engine_running = Gauge(
            "ci_engine_running_jobs", "jobs running on an engine", ["engine"], registry=registry
        )
        self.engine_last_seen = Gauge(
            "ci_engine_last_seen_timestamp_seconds",
            "when an engine's controller last recorded its heartbeat (Unix time)",
            ["engine"],
            registry=registry,
        )
        self.repository_errors = Counter(
            "ci_repository_errors",
            "database errors this process met (unreachable, busy, failed statements)",
            registry=registry,
        )

    async def refresh(self, repo: MetricsRepository) -> None:
        """Read the gauges from the database; on a database error count it and keep the last
        values, so a scrape still answers (with the error visible in the counter)."""
        try:
            stats = await repo.queue_stats()
            engines = await repo.list_engines()
        except StorageError as exc:
            self.repository_errors.inc()
            logger.warning("metrics: cannot read the queue from the database: %s", exc)
            return
        self.queued.set(stats.queued)
        self.running.set(stats.running)
        self.oldest_queued_age.set(stats.oldest_queued_age(datetime.now(UTC)))
        self.log_bytes.set(stats.log_bytes)
        for engine in engines:
            self.engine_capacity.labels(engine=engine.name).set(engine.capacity)
            self.engine_running.labels(engine=engine.name).set(engine.running)
            self.engine_last_seen.labels(engine=engine.name).set(engine.last_seen.timestamp())


def finished_counter(registry: CollectorRegistry) -> Counter:
    """`ci_jobs_finished_total{conclusion}`, every conclusion present from the start (at 0), so
    a rate over it needs no series to appear first."""
    counter = Counter(
        "ci_jobs_finished",
        "jobs this process completed, by conclusion",
        ["conclusion"],
        registry=registry,
    )
    for conclusion in JobConclusion:
        counter.labels(conclusion=conclusion.value)
    return counter


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(registry)


def token_accepts(authorization: str | None, token: str | None) -> bool:
    """Whether a request with this `Authorization` header may read `/metrics`: always when no
    token is configured, else only with `Bearer <token>` (compared in constant time)."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
