"""The Python versions the controller offers, as it published them at start.

Stored in the database rather than read from a setting by each server, because only the
controller can see its images: it looks into each one for its exact Python, and a server may
run on a machine without an engine. Every server replica reads the same rows, so `GET
/runtimes` and a submit's choice agree whichever replica answers. A publish replaces the
whole set in one transaction, so readers never see half of one controller's versions.
"""

from __future__ import annotations

from collections.abc import Sequence

from ci_common.python_versions import PythonRuntime, version_key
from ci_persistence.database import SqliteDatabase, now_text


class SqliteRuntimes:
    """Implements `ci_common.RuntimeRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    async def publish_runtimes(self, runtimes: Sequence[PythonRuntime]) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM python_runtimes")
            published = now_text()
            for runtime in runtimes:
                await conn.execute(
                    "INSERT INTO python_runtimes (version, python, image, is_default, "
                    "published_at) VALUES (?, ?, ?, ?, ?)",
                    (runtime.version, runtime.python, runtime.image, runtime.default, published),
                )

    async def list_runtimes(self) -> list[PythonRuntime]:
        rows = await self._db.fetch_all(
            "SELECT version, python, image, is_default FROM python_runtimes"
        )
        runtimes = [
            PythonRuntime(
                version=row["version"],
                python=row["python"],
                image=row["image"],
                default=bool(row["is_default"]),
            )
            for row in rows
        ]
        return sorted(runtimes, key=lambda runtime: version_key(runtime.version))
