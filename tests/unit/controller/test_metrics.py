"""The controller's metrics: what it started and finished, how long jobs waited and ran, and
its own `/metrics` endpoint (the queue read from the database, `CI_METRICS_TOKEN`)."""

from __future__ import annotations

import socket

import httpx
import pytest
from controller_world import World
from fake_runtime import FakeContainer
from metrics_text import sample
from pydantic import SecretStr

from ci_controller.metrics import ControllerMetrics
from ci_controller.metrics_endpoint import MetricsEndpointError, metrics_endpoint, serve_metrics
from ci_controller.settings import ControllerSettings


def passes(container: FakeContainer) -> None:
    container.emit(b"1 passed\n")
    container.exit(0)


def fails(container: FakeContainer) -> None:
    container.emit(b"1 failed\n")
    container.exit(1)


async def test_jobs_started_and_finished_are_counted_with_their_times(world: World) -> None:
    metrics = ControllerMetrics()
    outcomes = iter([passes, fails])
    world.runtime.on_start = lambda container: next(outcomes)(container)
    await world.submit()
    await world.submit()

    controller = world.controller(metrics=metrics)
    await controller.reconcile()
    await controller.wait_idle()

    registry = metrics.registry
    assert registry.get_sample_value("ci_jobs_started_total") == 2
    finished = {
        conclusion: registry.get_sample_value("ci_jobs_finished_total", {"conclusion": conclusion})
        for conclusion in ("success", "failure", "error", "cancelled", "timed_out")
    }
    assert finished == {"success": 1, "failure": 1, "error": 0, "cancelled": 0, "timed_out": 0}
    assert registry.get_sample_value("ci_job_dispatch_latency_seconds_count") == 2
    assert registry.get_sample_value("ci_job_duration_seconds_count") == 2
    latency = registry.get_sample_value("ci_job_dispatch_latency_seconds_sum")
    assert latency is not None and 0 < latency < 30


async def test_the_endpoint_reads_the_queue_from_the_database(world: World) -> None:
    metrics = ControllerMetrics()
    await world.submit()
    settings = world.settings.model_copy(update={"controller_metrics_port": 0})
    async with (
        serve_metrics(settings, metrics, world.repo) as port,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert sample(response.text, "ci_jobs_queued") == 1
    assert sample(response.text, "ci_jobs_running") == 0
    assert sample(response.text, "ci_jobs_started_total") == 0


async def test_with_a_token_the_endpoint_refuses_without_it() -> None:
    async def render() -> bytes:
        return b"ci_up 1\n"

    async with (
        metrics_endpoint(host="127.0.0.1", port=0, token="s3cret", render=render) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "CI_METRICS_TOKEN" in refused.json()["detail"]
        accepted = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert (accepted.status_code, accepted.text) == (200, "ci_up 1\n")
        assert (await client.get("/other")).status_code == 404
        assert (await client.post("/metrics")).status_code == 405


async def test_a_port_in_use_is_one_clear_error() -> None:
    async def render() -> bytes:
        return b""

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsEndpointError, match=f"127.0.0.1:{port}.*--metrics-port"):
            async with metrics_endpoint(host="127.0.0.1", port=port, token=None, render=render):
                pass


def test_the_token_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI_METRICS_TOKEN", "s3cret")
    monkeypatch.setenv("CI_CONTROLLER_METRICS_PORT", "9108")
    settings = ControllerSettings()
    assert settings.metrics_token == SecretStr("s3cret")
    assert settings.controller_metrics_port == 9108
