"""Authentication: every failure is a 401 with `WWW-Authenticate: Bearer` and a detail that
says what is wrong; `/health` needs no key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ci_common.auth import generate_api_key
from ci_persistence import SqliteRepository

from .conftest import Account, MakeAccount

PROTECTED = [
    ("GET", "/jobs"),
    ("GET", "/jobs/00000000-0000-4000-8000-000000000000"),
    ("GET", "/jobs/00000000-0000-4000-8000-000000000000/logs"),
    ("GET", "/jobs/00000000-0000-4000-8000-000000000000/stream"),
    ("POST", "/jobs/00000000-0000-4000-8000-000000000000/cancel"),
    ("POST", "/submit"),
    ("POST", "/submit-stream"),
    ("POST", "/submit-async"),
]


def assert_unauthorized(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert fragment in response.json()["detail"]


async def test_health_needs_no_key(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_endpoint_but_health_needs_a_key(
    api: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_unauthorized(await api.request(method, path), "missing API key")


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Basic dXNlcjpwYXNz", "malformed Authorization header"),
        ("Bearer", "malformed Authorization header"),
        ("Bearer    ", "malformed Authorization header"),
        ("Bearer not-a-key", "malformed API key"),
        ("Bearer ci_" + "x" * 43, "unknown API key"),
    ],
)
async def test_bad_keys_are_rejected(api: httpx.AsyncClient, header: str, fragment: str) -> None:
    assert_unauthorized(await api.get("/jobs", headers={"Authorization": header}), fragment)


async def test_revoked_key(api: httpx.AsyncClient, repo: SqliteRepository, alice: Account) -> None:
    assert (await api.get("/jobs", headers=alice.headers)).status_code == 200
    [key] = await repo.list_api_keys(user_id=alice.user.id)
    await repo.revoke_api_key(key.id)
    assert_unauthorized(await api.get("/jobs", headers=alice.headers), "revoked")


async def test_expired_key(api: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert_unauthorized(await api.get("/jobs", headers=account.headers), "expired")


async def test_inactive_user(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    await repo.set_user_active(alice.user.id, active=False)
    assert_unauthorized(await api.get("/jobs", headers=alice.headers), "deactivated")
    await repo.set_user_active(alice.user.id, active=True)
    assert (await api.get("/jobs", headers=alice.headers)).status_code == 200


async def test_a_second_key_of_the_same_user_sees_the_same_jobs(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    second = generate_api_key()
    await repo.create_api_key(
        user_id=alice.user.id,
        name="laptop",
        key_hash=second.key_hash,
        prefix=second.prefix,
        expires_at=None,
    )
    job = await repo.create_job(user_id=alice.user.id, archive=b"zip")
    response = await api.get(
        f"/jobs/{job.id}", headers={"Authorization": f"Bearer {second.secret}"}
    )
    assert response.status_code == 200
    assert response.json()["id"] == job.id
