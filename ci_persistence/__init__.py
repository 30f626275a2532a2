"""Storage backends for the `ci_common` repository protocols (SQLite now, PostgreSQL later)."""

from ci_persistence.migrations import SCHEMA_VERSION, migrate
from ci_persistence.repository import SqliteRepository, open_repository

__all__ = ["SCHEMA_VERSION", "SqliteRepository", "migrate", "open_repository"]
