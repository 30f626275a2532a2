"""`PostgresRepository`: both repository halves over one PostgreSQL database.

One mixin per concern, as for SQLite (`jobs`, `logs`, `test_results`, `artifacts`,
`retention`, `users`, `runtimes`, `queue_stats`); a new concern is a new module here with its
class added to the bases, and its tables a new step in `migrations`.
"""

from __future__ import annotations

from ci_persistence.postgres.artifacts import PostgresArtifacts
from ci_persistence.postgres.database import PostgresDatabase
from ci_persistence.postgres.engines import PostgresEngines
from ci_persistence.postgres.jobs import PostgresJobs
from ci_persistence.postgres.logs import PostgresLogs
from ci_persistence.postgres.queue_stats import PostgresQueueStats
from ci_persistence.postgres.retention import PostgresRetention
from ci_persistence.postgres.runtimes import PostgresRuntimes
from ci_persistence.postgres.test_results import PostgresTestResults
from ci_persistence.postgres.users import PostgresUsers


class PostgresRepository(
    PostgresJobs,
    PostgresLogs,
    PostgresTestResults,
    PostgresArtifacts,
    PostgresRetention,
    PostgresUsers,
    PostgresRuntimes,
    PostgresQueueStats,
    PostgresEngines,
):
    """Implements `ci_common.Repository`. Open with `await open_postgres_repository(url)`."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    @property
    def location(self) -> str:
        """The database's URL without its password."""
        return self._db.location

    async def check_writable(self) -> None:
        await self._db.check_writable()

    async def reclaim_space(self) -> None:
        """Nothing to do: PostgreSQL's autovacuum reuses the space of deleted uploads and logs."""

    async def close(self) -> None:
        await self._db.close()


async def open_postgres_repository(url: str) -> PostgresRepository:
    """Connect to (and migrate) the database at `url` (`postgresql://...`)."""
    return PostgresRepository(await PostgresDatabase.open(url))
