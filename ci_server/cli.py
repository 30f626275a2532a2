"""`ci-server`: run the HTTP API under uvicorn.

Settings other than where to listen come from the environment (`CI_DATABASE_URL` or
`CI_DB_PATH`, upload limits),
so every worker process builds the same app from `ci_server.app:app`. Two of them configure
uvicorn itself, per worker process: `CI_MAX_CONNECTIONS` (more get a plain 503) and
`CI_KEEP_ALIVE_TIMEOUT` (how long a connection may go without a complete request head, before
its first request or between requests; `ci_server.http_protocol`). Request heads are capped at
`MAX_REQUEST_HEAD_BYTES`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click
import uvicorn

from ci_common.errors import CIError
from ci_persistence import DatabaseLocation, open_repository_at
from ci_server.http_protocol import H11Protocol
from ci_server.settings import ServerSettings

MAX_REQUEST_HEAD_BYTES = 16 * 1024


def load_settings() -> ServerSettings:
    """Settings from the environment (`CI_*`); a bad value is a usage error, not a trace."""
    try:
        return ServerSettings()
    except ValueError as exc:
        raise click.UsageError(f"invalid CI_* setting: {exc}") from exc


async def _check_database(location: DatabaseLocation) -> None:
    """Open (and migrate) the database once, so a bad CI_DB_PATH or CI_DATABASE_URL fails
    here, in one line, rather than in every worker's startup."""
    repo = await open_repository_at(location)
    await repo.close()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The SQLite database (default: $CI_DB_PATH or ~/.local/share/ci/ci.db); "
    "CI_DATABASE_URL=postgresql://... uses PostgreSQL instead.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="CI_SERVER_HOST",
    help="Interface to listen on (0.0.0.0 for all).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="CI_SERVER_PORT",
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="CI_SERVER_WORKERS",
    help="Server processes; all share the database.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Uvicorn and application log level.",
)
def main(host: str, port: int, workers: int, log_level: str, db_path: Path | None) -> None:
    """Serve the CI API (submit, jobs, log streams) on HOST:PORT.

    The database is PostgreSQL when CI_DATABASE_URL is set, else the SQLite file --db-path,
    else CI_DB_PATH (default ~/.local/share/ci/ci.db), shared with ci-controller and ci-admin.
    """
    if db_path is not None:
        # Every worker process builds its app from the environment (`ci_server.app`).
        os.environ["CI_DB_PATH"] = str(db_path)
    settings = load_settings()
    location = DatabaseLocation.from_settings(settings)
    try:
        asyncio.run(_check_database(location))
    except CIError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"ci-server: database {location}, listening on http://{host}:{port}")
    uvicorn.run(
        "ci_server.app:app",
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=5,
        http=H11Protocol,
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
    )
