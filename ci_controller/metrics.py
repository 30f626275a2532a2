"""The controller's metrics: what it started and finished, how long jobs waited and ran, and
the queue's gauges from the database (`ci_common.metrics`).

One `ControllerMetrics` per controller, with its own registry; the controller calls
`job_started` when it claims a job and `job_finished` when it completes one, and
`metrics_endpoint` serves the registry.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from ci_common.metrics import QueueGauges, finished_counter
from ci_common.models import Job, JobConclusion

DISPATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
"""Seconds from submit to claim: tens of milliseconds when a slot is free, minutes in a queue."""
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Seconds from claim to completion: a small suite to the default one-hour ceiling and past."""


class ControllerMetrics:
    """The controller's registry and the metrics in it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue = QueueGauges(self.registry)
        self.started = Counter(
            "ci_jobs_started", "jobs this controller claimed to run", registry=self.registry
        )
        self.finished = finished_counter(self.registry)
        self.dispatch_latency = Histogram(
            "ci_job_dispatch_latency_seconds",
            "seconds from a job's submit to its claim by the controller (queued to running)",
            buckets=DISPATCH_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "ci_job_duration_seconds",
            "seconds from a job's start to its completion",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def job_started(self, job: Job, *, at: datetime) -> None:
        """`job` (as it was queued) was just claimed at `at`."""
        self.started.inc()
        self.dispatch_latency.observe(max(0.0, (at - job.created_at).total_seconds()))

    def job_finished(self, job: Job, *, conclusion: JobConclusion, at: datetime) -> None:
        """This controller completed `job` at `at` with `conclusion`."""
        self.finished.labels(conclusion=conclusion.value).inc()
        if job.started_at is not None:
            self.duration.observe(max(0.0, (at - job.started_at).total_seconds()))
