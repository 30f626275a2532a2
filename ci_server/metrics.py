"""The server's metrics: the queue's gauges from the database (`ci_common.metrics`), the SSE
followers of this process, and the queued jobs it cancelled (which never reach a controller).

One `ServerMetrics` per app, with its own registry, held by `ServerRuntime`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from ci_common.metrics import QueueGauges, finished_counter
from ci_common.models import Job, JobConclusion


class ServerMetrics:
    """The server process's registry and the metrics in it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue = QueueGauges(self.registry)
        self.finished = finished_counter(self.registry)
        self.sse_followers = Gauge(
            "ci_sse_followers",
            "log streams this server process is feeding (SSE followers)",
            registry=self.registry,
        )

    def cancel_answered(self, *, before: Job, after: Job) -> None:
        """Count a queued job that a cancel completed here: no controller finishes it."""
        if (
            not before.is_terminal
            and after.is_terminal
            and after.started_at is None
            and after.conclusion is JobConclusion.CANCELLED
        ):
            self.finished.labels(conclusion=JobConclusion.CANCELLED.value).inc()
