# pyright: basic
# (schemathesis and hypothesis decorators are only partly typed)
"""Property-based run of the whole API from its own OpenAPI schema (schemathesis).

Every operation gets a bounded number of generated requests, sent with a valid API key to a
real uvicorn serving the app: no response may be a 5xx, and every response must match what
the schema documents (status code, content type, headers, body).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ci_common.auth import generate_api_key
from ci_persistence import open_repository
from ci_server import ServerSettings, create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


async def _create_key(db_path: Path) -> str:
    repo = await open_repository(db_path)
    try:
        user = await repo.create_user(name="fuzz", email="fuzz@example.org")
        key = generate_api_key()
        await repo.create_api_key(
            user_id=user.id, name="fuzz", key_hash=key.key_hash, prefix=key.prefix, expires_at=None
        )
        return key.secret
    finally:
        await repo.close()


@pytest.fixture
def fuzz_key(db_path: Path) -> str:
    return asyncio.run(_create_key(db_path))


# The schema comes from an app that is never started (building it touches no database); the
# requests go to the test's own server, on its own database.
schema = schemathesis.openapi.from_dict(
    create_app(ServerSettings(db_path=Path("unused.db"))).openapi()
)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    # One server and one user per operation, shared by its examples on purpose.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, live_server: str, fuzz_key: str
) -> None:
    case.call_and_validate(
        base_url=live_server, headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS
    )
