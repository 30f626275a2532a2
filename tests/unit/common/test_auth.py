"""API key generation and `authenticate`, against an in-memory user store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from ci_common.auth import authenticate, generate_api_key, hash_api_key
from ci_common.errors import AuthenticationError
from ci_common.models import ApiKey, ApiKeyId, User, UserId

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class MemoryUsers:
    """Just enough of `UserRepository` for authentication."""

    def __init__(self, user: User, keys: Sequence[tuple[str, ApiKey]]) -> None:
        self.user = user
        self.keys = dict(keys)
        self.touched: list[ApiKeyId] = []

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, User] | None:
        key = self.keys.get(key_hash)
        return None if key is None else (key, self.user)

    async def touch_api_key(self, key_id: ApiKeyId, *, used_at: datetime) -> None:
        self.touched.append(key_id)


def make_user(*, active: bool = True) -> User:
    return User(id=UserId("user-1"), name="Ada", email="ada@x.org", active=active, created_at=NOW)


def make_key(**changes: object) -> ApiKey:
    fields: dict[str, object] = {
        "id": ApiKeyId("key-1"),
        "user_id": UserId("user-1"),
        "name": "k",
        "prefix": "ci_abc",
        "created_at": NOW,
        "expires_at": None,
        "revoked_at": None,
        "last_used_at": None,
    }
    return ApiKey.model_validate({**fields, **changes})


def store(secret: str, *, active: bool = True, **changes: object) -> MemoryUsers:
    return MemoryUsers(make_user(active=active), [(hash_api_key(secret), make_key(**changes))])


def test_generated_keys_look_right_and_differ() -> None:
    first, second = generate_api_key(), generate_api_key()
    assert first.secret.startswith("ci_")
    assert len(first.secret) == 46
    assert first.secret != second.secret
    assert first.key_hash == hash_api_key(first.secret)
    assert len(first.key_hash) == 64
    assert first.prefix == first.secret[:10]


async def test_valid_key_gives_its_user_and_records_use() -> None:
    secret = generate_api_key().secret
    users = store(secret)
    assert (await authenticate(users, secret, now=NOW)).email == "ada@x.org"  # type: ignore[arg-type]  # partial fake
    assert users.touched == ["key-1"]


async def test_recent_use_is_not_written_again() -> None:
    secret = generate_api_key().secret
    users = store(secret, last_used_at=NOW - timedelta(seconds=5))
    await authenticate(users, secret, now=NOW)  # type: ignore[arg-type]  # partial fake
    assert users.touched == []


@pytest.mark.parametrize(
    ("changes", "active", "message"),
    [
        ({"revoked_at": NOW - timedelta(days=1)}, True, "revoked"),
        ({"expires_at": NOW - timedelta(seconds=1)}, True, "expired"),
        ({}, False, "deactivated"),
    ],
)
async def test_unusable_keys_are_rejected_with_the_reason(
    changes: dict[str, object], active: bool, message: str
) -> None:
    secret = generate_api_key().secret
    with pytest.raises(AuthenticationError, match=message):
        await authenticate(store(secret, active=active, **changes), secret, now=NOW)  # type: ignore[arg-type]  # partial fake


async def test_unknown_and_malformed_keys_are_rejected() -> None:
    users = store(generate_api_key().secret)
    with pytest.raises(AuthenticationError, match="unknown"):
        await authenticate(users, generate_api_key().secret, now=NOW)  # type: ignore[arg-type]  # partial fake
    with pytest.raises(AuthenticationError, match="malformed"):
        await authenticate(users, "hunter2", now=NOW)  # type: ignore[arg-type]  # partial fake
