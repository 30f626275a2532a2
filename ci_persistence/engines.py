"""Each Docker engine's heartbeat: its controller writes its name, capacity and the time on
every full pass, so `GET /engines` can list the engines and a controller can tell an engine
whose controller has gone quiet (`ci_controller.lost_engines`)."""

from __future__ import annotations

from ci_common.models import EngineStatus, JobStatus
from ci_persistence.database import SqliteDatabase, from_text, now_text


class SqliteEngines:
    """Implements `ci_common.EngineRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    async def record_engine(self, name: str, *, capacity: int) -> None:
        await self._db.execute(
            "INSERT INTO engines (name, capacity, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity, "
            "last_seen = excluded.last_seen",
            (name, capacity, now_text()),
        )

    async def list_engines(self) -> list[EngineStatus]:
        rows = await self._db.fetch_all(
            "SELECT name, capacity, last_seen, (SELECT COUNT(*) FROM jobs WHERE jobs.engine = "
            "engines.name AND jobs.status = ?) AS running FROM engines ORDER BY name",
            (JobStatus.RUNNING.value,),
        )
        engines: list[EngineStatus] = []
        for row in rows:
            last_seen = from_text(row["last_seen"])
            assert last_seen is not None
            engines.append(
                EngineStatus(
                    name=row["name"],
                    capacity=row["capacity"],
                    running=row["running"],
                    last_seen=last_seen,
                )
            )
        return engines
