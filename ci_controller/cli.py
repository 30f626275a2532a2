"""`ci-controller`: the one process that runs jobs, for one database.

Start-up order matters: the singleton lock first (a second controller must fail, or wait,
before it touches anything), then the database, then the engine. The lock is a file lock beside
a SQLite database (a second controller refuses to start), or a PostgreSQL advisory lock held on
a connection of its own (`ci_persistence.postgres.singleton`) when `CI_DATABASE_URL` is set: a
second controller then waits as a standby and takes over when the first one's session ends.
SIGTERM and SIGINT stop dispatching and exit 0, leaving running containers for the next start to
adopt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
from pathlib import Path

import click

from ci_common.allocator import keep_freed_memory
from ci_common.change_feed import ChangeTopic
from ci_common.errors import CIError
from ci_common.models import ENGINE_NAME_PATTERN
from ci_controller.controller import Controller
from ci_controller.docker import DockerRuntime, check_memory_limit
from ci_controller.metrics import ControllerMetrics
from ci_controller.metrics_endpoint import serve_metrics
from ci_controller.project import remove_stale_staging
from ci_controller.python_runtimes import default_image, discover_runtimes
from ci_controller.settings import ControllerSettings
from ci_controller.singleton import ControllerLock
from ci_persistence import DatabaseLocation, change_feed_at, open_repository_at
from ci_persistence.postgres import AdvisoryLock, controller_lock_key

logger = logging.getLogger("ci_controller")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The SQLite database (default: $CI_DB_PATH or ~/.local/share/ci/ci.db); "
    "CI_DATABASE_URL=postgresql://... uses PostgreSQL instead.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between full reconcile passes (default: $CI_RECONCILE_INTERVAL or 2).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Serve Prometheus /metrics on this port (default: $CI_CONTROLLER_METRICS_PORT, "
    "else not served).",
)
@click.option(
    "--engine",
    default=None,
    help="This controller's engine name (default: $CI_ENGINE_NAME or `default`); one "
    "controller per engine, all claiming from the same queue.",
)
@click.option(
    "--docker-host",
    envvar="DOCKER_HOST",
    default=None,
    help="The engine's address, e.g. unix:///var/run/docker-second.sock (default: "
    "$DOCKER_HOST or the local socket).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    envvar="CI_LOG_LEVEL",
    show_default=True,
    help="How much the controller logs: DEBUG, INFO, WARNING or ERROR.",
)
def cli(
    db_path: Path | None,
    interval: float | None,
    metrics_port: int | None,
    engine: str | None,
    docker_host: str | None,
    log_level: str,
) -> None:
    """Run queued jobs in Docker containers and keep the database in step with the engine.

    Settings come from CI_* environment variables: CI_DATABASE_URL, CI_JOB_IMAGE, CI_JOB_IMAGES,
    CI_JOB_TIMEOUT, CI_JOB_NETWORK, CI_JOB_MEMORY, CI_JOB_CPUS, CI_JOB_DISK, CI_MAX_PARALLEL_JOBS,
    CI_RECONCILE_INTERVAL, CI_MAX_LOG_MB, CI_ENGINE_NAME, CI_ENGINE_LOST_AFTER.
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = ControllerSettings.model_validate({})
    except ValueError as exc:
        raise click.ClickException(f"invalid CI_* setting: {exc}") from exc
    if db_path is not None:
        settings = settings.model_copy(update={"db_path": db_path})
    if interval is not None:
        settings = settings.model_copy(update={"reconcile_interval": interval})
    if metrics_port is not None:
        settings = settings.model_copy(update={"controller_metrics_port": metrics_port})
    if engine is not None:
        if not re.fullmatch(ENGINE_NAME_PATTERN, engine):
            raise click.BadParameter(
                "letters, digits, '.', '_' and '-', at most 63, e.g. `second`",
                param_hint="--engine",
            )
        settings = settings.model_copy(update={"engine_name": engine})
    try:
        check_memory_limit(settings.job_memory)
    except CIError as exc:
        raise click.ClickException(str(exc)) from exc
    keep_freed_memory()
    location = DatabaseLocation.from_settings(settings)
    if location.is_postgres:
        try:
            asyncio.run(serve_holding_advisory_lock(settings, location, docker_host=docker_host))
        except CIError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    try:
        lock = ControllerLock.acquire(settings.db_path, engine=settings.engine_name)
    except CIError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        asyncio.run(serve(settings, docker_host=docker_host))
    except CIError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        lock.release()


async def serve_holding_advisory_lock(
    settings: ControllerSettings, location: DatabaseLocation, *, docker_host: str | None
) -> None:
    """`serve` while holding the database's controller lock (PostgreSQL), as a standby until
    then.

    A second controller on the same database waits for the lock, says so in one line, and
    takes over (adopting the running jobs, as any start does) once the holder's session ends.
    The holder watches its lock's connection: should it break, the lock is gone and a standby
    may already be running the jobs, so this one stops at once and exits non-zero rather than
    act without the lock."""
    assert location.url is not None
    stop = _stop_on_signals()
    name = f"ci-controller pid {os.getpid()} on {socket.gethostname()}"
    acquiring = asyncio.create_task(
        AdvisoryLock.acquire(
            location.url,
            key=controller_lock_key(settings.engine_name),
            name=name,
            on_wait=lambda holder: logger.info(
                "standby: %s holds the controller lock of engine %r on %s; taking over when "
                "it stops",
                holder,
                settings.engine_name,
                location,
            ),
        )
    )
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not acquiring.done():
        acquiring.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acquiring
        logger.info("standby stopped before taking over")
        return
    lock = acquiring.result()
    logger.info("holding the controller lock of %s as %s", location, name)
    lost: list[str] = []

    async def watch_lock() -> None:
        lost.append(await lock.lost())
        stop.set()

    watcher = asyncio.create_task(watch_lock(), name="watch the controller lock")
    try:
        await serve(settings, docker_host=docker_host, stop=stop)
    finally:
        watcher.cancel()
        await lock.release()
    if lost:
        raise LockLostError(
            f"lost the controller lock of {location}: its database connection broke "
            f"({lost[0]}); stopped so that two controllers never run the same jobs; running "
            "containers are adopted by whichever controller holds the lock next"
        )


class LockLostError(CIError):
    """The connection holding the controller lock broke: this controller must stop."""


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve(
    settings: ControllerSettings,
    *,
    docker_host: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the controller until `stop` is set (default: SIGTERM or SIGINT), on the engine at
    `docker_host` (else `DOCKER_HOST`, else the local socket)."""
    stop = stop if stop is not None else _stop_on_signals()
    location = DatabaseLocation.from_settings(settings)
    repo = await open_repository_at(location)
    try:
        installation_id = await repo.installation_id()
        runtime = await asyncio.to_thread(
            DockerRuntime.connect,
            installation_id=installation_id,
            engine=settings.engine_name,
            docker_host=docker_host,
        )
        try:
            for left in await asyncio.to_thread(remove_stale_staging):
                logger.info("removed %s, left by a controller that was killed", left)
            settings = settings.model_copy(update={"job_image": default_image(settings)})
            runtimes = await discover_runtimes(settings, runtime)
            await repo.publish_runtimes(runtimes)
            offered = ", ".join(
                f"{r.version}={r.image} ({r.python}{', default' if r.default else ''})"
                for r in runtimes
            )
            logger.info(
                "controller started: engine %s, database %s, installation %s, Python %s, up to "
                "%d jobs at once, full reconcile every %g s",
                settings.engine_name,
                location,
                installation_id,
                offered or f"not known (image {settings.job_image})",
                settings.max_parallel_jobs,
                settings.reconcile_interval,
            )
            changes = change_feed_at(
                location,
                topic=ChangeTopic.QUEUE,
                name=f"ci-controller pid {os.getpid()} wake-ups",
            )
            metrics = ControllerMetrics()
            controller = Controller(
                settings, runtime, repo, runtimes=runtimes, metrics=metrics, changes=changes
            )
            async with serve_metrics(settings, metrics, repo):
                if not stop.is_set():  # e.g. the controller lock was lost while starting
                    await controller.run(stop)
        finally:
            runtime.close()
        logger.info("controller stopped; running containers are adopted at the next start")
    finally:
        await repo.close()


def main(prog_name: str | None = None) -> None:
    cli(prog_name=prog_name)
