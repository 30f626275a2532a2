"""Backends the repository contract runs against: every test taking `repo` or `open_repo`
runs once on SQLite and once on PostgreSQL (a fresh database per test, see tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ci_common.repository import Repository
from ci_persistence import DatabaseLocation, open_repository_at

OpenRepository = Callable[[], Awaitable[Repository]]

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseLocation:
    """A fresh, empty database of each backend."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return DatabaseLocation(path=tmp_path / "unused.db", url=url)
    return DatabaseLocation(path=tmp_path / "ci.db")


@pytest.fixture
async def open_repo(location: DatabaseLocation) -> AsyncIterator[OpenRepository]:
    """A factory of connections to ONE fresh database (call twice for two writers)."""
    opened: list[Repository] = []

    async def factory() -> Repository:
        repo = await open_repository_at(location)
        opened.append(repo)
        return repo

    yield factory
    for repo in opened:
        await repo.close()


@pytest.fixture
async def repo(open_repo: OpenRepository) -> Repository:
    return await open_repo()
