"""Which backend a process uses: PostgreSQL when `CI_DATABASE_URL` is set, else SQLite at
`CI_DB_PATH`. Every process (ci-server, ci-controller, ci-admin) opens its repository through
`open_repository_at`, so they cannot disagree about the rule; `change_feed_at` gives the
backend's pushed wake-ups, if it has any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ci_common.change_feed import ChangeFeed, ChangeTopic
from ci_common.repository import Repository
from ci_common.settings import Settings
from ci_persistence.postgres import open_postgres_repository
from ci_persistence.postgres.database import redact
from ci_persistence.postgres.notifications import ChangeListener
from ci_persistence.repository import open_repository


@dataclass(frozen=True)
class DatabaseLocation:
    """Where the database is: a PostgreSQL URL, or else a SQLite file."""

    path: Path
    url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseLocation:
        return cls(path=settings.db_path, url=settings.database_url or None)

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        """For logs and start-up lines: the URL without its password, or the file."""
        return redact(self.url) if self.url is not None else str(self.path)


async def open_repository_at(location: DatabaseLocation) -> Repository:
    """Open (creating and migrating as needed) the database `location` names; `StorageError`
    with one line saying what is wrong when it cannot be used."""
    if location.url is not None:
        return await open_postgres_repository(location.url)
    return await open_repository(location.path)


def change_feed_at(
    location: DatabaseLocation, *, topic: ChangeTopic, name: str
) -> ChangeFeed | None:
    """The database's pushed wake-ups on `topic` (PostgreSQL's LISTEN), or None where there
    are none (SQLite: poll). `name` says who listens, for the database's operators."""
    if location.url is None:
        return None
    return ChangeListener(location.url, topic=topic, name=name)
