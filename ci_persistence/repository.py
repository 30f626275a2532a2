"""`SqliteRepository`: both repository halves over one open SQLite database."""

from __future__ import annotations

from pathlib import Path

from ci_persistence.artifacts import SqliteArtifacts
from ci_persistence.database import SqliteDatabase
from ci_persistence.engines import SqliteEngines
from ci_persistence.jobs import SqliteJobs
from ci_persistence.logs import SqliteLogs
from ci_persistence.queue_stats import SqliteQueueStats
from ci_persistence.retention import SqliteRetention
from ci_persistence.runtimes import SqliteRuntimes
from ci_persistence.test_results import SqliteTestResults
from ci_persistence.users import SqliteUsers


class SqliteRepository(
    SqliteJobs,
    SqliteLogs,
    SqliteTestResults,
    SqliteArtifacts,
    SqliteRetention,
    SqliteUsers,
    SqliteRuntimes,
    SqliteQueueStats,
    SqliteEngines,
):
    """Implements `ci_common.Repository`. Open with `await open_repository(path)`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    @property
    def path(self) -> Path:
        return self._db.path

    async def check_writable(self) -> None:
        await self._db.check_writable()

    async def reclaim_space(self) -> None:
        await self._db.reclaim_space()

    async def close(self) -> None:
        await self._db.close()


async def open_repository(path: Path) -> SqliteRepository:
    """Open (creating and migrating as needed) the database at `path`."""
    return SqliteRepository(await SqliteDatabase.open(path))
