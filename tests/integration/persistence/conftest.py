"""Backends the repository contract runs against. A PostgreSQL backend adds itself here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ci_common.repository import Repository
from ci_persistence import open_repository

OpenRepository = Callable[[], Awaitable[Repository]]


@pytest.fixture(params=["sqlite"])
async def open_repo(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenRepository]:
    """A factory of connections to ONE fresh database (call twice for two writers)."""
    assert request.param == "sqlite"
    opened: list[Repository] = []

    async def factory() -> Repository:
        repo = await open_repository(tmp_path / "ci.db")
        opened.append(repo)
        return repo

    yield factory
    for repo in opened:
        await repo.close()


@pytest.fixture
async def repo(open_repo: OpenRepository) -> Repository:
    return await open_repo()
