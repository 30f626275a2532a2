"""The Python versions the controller offers, in PostgreSQL (see `ci_persistence.runtimes`
for why they are stored): a publish replaces the whole set in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from ci_common.python_versions import PythonRuntime, version_key
from ci_persistence.postgres.database import PostgresDatabase


class PostgresRuntimes:
    """Implements `ci_common.RuntimeRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    async def publish_runtimes(self, runtimes: Sequence[PythonRuntime]) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM python_runtimes")
            await conn.executemany(
                "INSERT INTO python_runtimes (version, python, image, is_default, published_at) "
                "VALUES ($1, $2, $3, $4, now())",
                [(r.version, r.python, r.image, r.default) for r in runtimes],
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
                default=row["is_default"],
            )
            for row in rows
        ]
        return sorted(runtimes, key=lambda runtime: version_key(runtime.version))
