"""Each Docker engine's heartbeat in PostgreSQL (see `ci_persistence.engines`)."""

from __future__ import annotations

from ci_common.models import EngineStatus, JobStatus
from ci_persistence.postgres.database import PostgresDatabase


class PostgresEngines:
    """Implements `ci_common.EngineRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    async def record_engine(self, name: str, *, capacity: int) -> None:
        await self._db.execute(
            "INSERT INTO engines (name, capacity, last_seen) VALUES ($1, $2, now()) "
            "ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity, "
            "last_seen = excluded.last_seen",
            name,
            capacity,
        )

    async def list_engines(self) -> list[EngineStatus]:
        rows = await self._db.fetch_all(
            "SELECT name, capacity, last_seen, (SELECT count(*) FROM jobs WHERE jobs.engine = "
            "engines.name AND jobs.status = $1) AS running FROM engines ORDER BY name",
            JobStatus.RUNNING.value,
        )
        return [
            EngineStatus(
                name=row["name"],
                capacity=row["capacity"],
                running=row["running"],
                last_seen=row["last_seen"],
            )
            for row in rows
        ]
