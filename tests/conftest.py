"""Fixtures every test directory may use: a PostgreSQL database per test.

`postgres_server` is one throwaway cluster per pytest process (each xdist worker starts its
own in about a second, see `postgres_cluster`), or the server `CI_TEST_DATABASE_URL` names.
`postgres_url` is a new, empty database on it for one test (`CREATE DATABASE`, ~60 ms), dropped
afterwards, so tests never see each other's rows, in parallel or not.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from postgres_cluster import ClusterError, DatabaseDropper, PostgresCluster


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class PostgresServer:
    """A server the tests may create databases on, and who drops them again."""

    url: str
    dropper: DatabaseDropper


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if given := os.environ.get("CI_TEST_DATABASE_URL"):
        server = PostgresServer(url=given, dropper=DatabaseDropper(given))
        yield server
        server.dropper.wait()
        return
    try:
        cluster = PostgresCluster.start()
    except ClusterError as exc:
        pytest.fail(f"no PostgreSQL for the tests: {exc}", pytrace=False)
    try:
        yield PostgresServer(url=cluster.url(), dropper=DatabaseDropper(cluster.url()))
    finally:
        cluster.stop()  # its databases go with it


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database for this test; dropped (in the background) when it ends."""
    name = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(postgres_server.url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield with_database(postgres_server.url, name)
    postgres_server.dropper.drop(name)
