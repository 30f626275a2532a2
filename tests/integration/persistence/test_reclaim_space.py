"""The database files stay proportional to what is stored (issue 9, item 8).

Uploads are deleted when their job ends; before, their pages stayed in the file as free pages
forever and the WAL kept its peak size. With incremental vacuum and a truncating checkpoint,
`reclaim_space` (which the controller calls once a minute) gives both back.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ci_persistence import open_repository
from ci_persistence.database import WAL_SIZE_LIMIT_BYTES

ARCHIVE = os.urandom(4 * 1024 * 1024)  # incompressible, like a zip


def size_of(path: Path) -> int:
    """The file's size, 0 when it does not exist (a truncated WAL may be gone)."""
    return path.stat().st_size if path.exists() else 0


async def test_deleted_uploads_give_their_space_back(tmp_path: Path) -> None:
    path = tmp_path / "ci.db"
    repo = await open_repository(path)
    user = await repo.create_user(name="Ada", email="ada@example.org")
    jobs = [await repo.create_job(user_id=user.id, archive=ARCHIVE) for _ in range(10)]
    await repo.reclaim_space()
    full = size_of(path)
    assert full > 10 * len(ARCHIVE)

    for job in jobs:
        await repo.delete_archive(job.id)
    await repo.reclaim_space()
    await repo.create_user(name="Bob", email="bob@example.org")  # restarts the WAL

    assert size_of(path) < full / 5
    assert size_of(Path(f"{path}-wal")) <= WAL_SIZE_LIMIT_BYTES
    await repo.close()


async def test_an_existing_database_is_converted_to_incremental_vacuum_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ci.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE leftover (x)")  # a file made before auto_vacuum was set
    old.commit()
    assert old.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    old.close()

    repo = await open_repository(path)
    await repo.close()

    again = sqlite3.connect(path)
    assert again.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    again.close()
