"""The PostgreSQL backend (asyncpg), chosen by `CI_DATABASE_URL=postgresql://...`.

Modules mirror the SQLite backend's, one concern each: `database` (the pool, error
conversion), `migrations`, `jobs`, `users`, `runtimes`, `repository` (the class that mixes
them), `singleton` (the controller's advisory lock).
"""

from ci_persistence.postgres.repository import PostgresRepository, open_postgres_repository
from ci_persistence.postgres.singleton import (
    CONTROLLER_LOCK_KEY,
    AdvisoryLock,
    DatabaseLockHeldError,
    controller_lock_key,
)

__all__ = [
    "CONTROLLER_LOCK_KEY",
    "AdvisoryLock",
    "DatabaseLockHeldError",
    "PostgresRepository",
    "controller_lock_key",
    "open_postgres_repository",
]
