"""The FastAPI application: `create_app(settings)` wires everything.

The server is stateless: everything it answers comes from the database, so any number of
processes can serve the same jobs and streams. Each process opens its database connection and
starts its `LogHub` in the lifespan, never at import, so an app can be built (by uvicorn
workers, by tests) without touching the disk. `ci_server.app` holds the one built from the
environment for `uvicorn ci_server.app:app`; it is a separate module so importing the package
(the `ci-server` command, tests) does not read the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ci_common.allocator import keep_freed_memory
from ci_common.change_feed import ChangeTopic
from ci_common.settings import Settings
from ci_persistence import DatabaseLocation, change_feed_at, open_repository_at
from ci_server.api_docs import install_api_docs
from ci_server.dependencies import ServerRuntime
from ci_server.errors import install_error_handlers
from ci_server.log_hub import LogHub
from ci_server.routes import (
    artifacts,
    engines,
    health,
    jobs,
    limits,
    metrics,
    runtimes,
    submit,
    tests,
    whoami,
)
from ci_server.sessions import SessionSigner
from ci_server.settings import ServerSettings
from ci_server.ui import install_dashboard
from ci_server.upload_intake import UploadSlots
from ci_server.upload_limit import MULTIPART_OVERHEAD_BYTES, RequestSizeLimit

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Submit a zipped Python project; the service runs `python -m pytest` in a fresh container and
streams the output back. Every endpoint but `/health` needs `Authorization: Bearer <api key>`
(keys come from `ci-admin key create`). Errors are `{"detail": "..."}` saying what to fix.
"""


@asynccontextmanager
async def _listening(location: DatabaseLocation, hub: LogHub) -> AsyncGenerator[None]:
    """Feed the database's pushed notices of job changes (PostgreSQL) to `hub`."""
    changes = change_feed_at(
        location, topic=ChangeTopic.JOBS, name=f"ci-server pid {os.getpid()} wake-ups"
    )
    if changes is None:
        yield
        return
    task = asyncio.create_task(
        changes.run(on_change=hub.job_changed, on_live=hub.changes_pushed), name="job changes"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings) -> FastAPI:
    """An app serving the database `settings` name (`CI_DATABASE_URL`, else `CI_DB_PATH`),
    opened when the app starts."""
    server_settings = ServerSettings.from_settings(settings)
    runtime = ServerRuntime(
        settings=server_settings, uploads=UploadSlots(server_settings.max_uploads)
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncGenerator[None]:
        keep_freed_memory()
        location = DatabaseLocation.from_settings(server_settings)
        repo = await open_repository_at(location)
        hub = LogHub(
            repo,
            poll_interval=server_settings.log_poll_interval,
            full_check_interval=server_settings.log_full_check_interval,
        )
        try:
            secret = (
                server_settings.session_secret.get_secret_value()
                if server_settings.session_secret is not None
                else await repo.session_secret()
            )
            runtime.sessions = SessionSigner(
                secret=secret.encode(), lifetime_seconds=int(server_settings.session_hours * 3600)
            )
            async with hub, _listening(location, hub):
                runtime.repo, runtime.hub = repo, hub
                logger.info("serving the CI database at %s", location)
                yield
        finally:
            runtime.repo, runtime.hub, runtime.sessions = None, None, None
            await repo.close()

    app = FastAPI(
        title="CI service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app, on_storage_error=runtime.metrics.queue.repository_errors.inc)
    install_api_docs(app)
    install_dashboard(app)
    app.include_router(submit.router)
    app.include_router(jobs.router)
    app.include_router(tests.router)
    app.include_router(artifacts.router)
    app.include_router(limits.router)
    app.include_router(runtimes.router)
    app.include_router(engines.router)
    app.include_router(whoami.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.add_middleware(
        RequestSizeLimit,
        max_bytes=server_settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        detail=(
            f"the upload is over the {server_settings.max_upload_mb:g} MiB limit; leave out "
            "virtualenvs, build outputs and data files (or ask an admin to raise "
            "CI_MAX_UPLOAD_MB)"
        ),
    )
    return app
