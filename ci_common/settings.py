"""The settings every process shares, read from the environment (`CI_*`) at start-up.

Each process widens `Settings` with its own knobs in its own package
(`ci_server.settings.ServerSettings`, `ci_controller.settings.ControllerSettings`); what stays
here is what more than one process reads. All processes agree on the database location by
default: `$XDG_DATA_HOME/ci/ci.db`, that is `~/.local/share/ci/ci.db`, independent of the
directory a process is started from.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_path() -> Path:
    """The database file every process uses unless `CI_DB_PATH` says otherwise."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "ci" / "ci.db"


class Settings(BaseSettings):
    """What more than one process reads: where the database is, and how many jobs run at once
    (the controller runs that many; the server shows the dashboard's slots from it)."""

    model_config = SettingsConfigDict(env_prefix="CI_", extra="ignore")

    db_path: Path = Field(default_factory=default_db_path, description="the SQLite database file")
    database_url: str | None = Field(
        default=None,
        description="`postgresql://user:password@host:5432/database`: PostgreSQL instead of "
        "the SQLite file (every process of one installation must use the same)",
    )
    max_parallel_jobs: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="jobs running at once"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="the Bearer token `/metrics` asks for, on the server and the controller; "
        "unset: `/metrics` is open to anyone who can reach it",
    )
    engine_lost_after: float = Field(
        default=30.0,
        gt=0,
        description="seconds without a heartbeat from an engine's controller after which its "
        "running jobs end as `error` and the jobs it had not started go back to the queue",
    )
