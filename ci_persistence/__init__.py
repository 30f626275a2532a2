"""Storage backends for the `ci_common` repository protocols: SQLite (the embedded default)
and PostgreSQL (`ci_persistence.postgres`), chosen by `ci_persistence.selection`."""

from ci_persistence.migrations import SCHEMA_VERSION, migrate
from ci_persistence.repository import SqliteRepository, open_repository
from ci_persistence.selection import DatabaseLocation, change_feed_at, open_repository_at

__all__ = [
    "SCHEMA_VERSION",
    "DatabaseLocation",
    "SqliteRepository",
    "change_feed_at",
    "migrate",
    "open_repository",
    "open_repository_at",
]
