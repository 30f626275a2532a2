"""An API key's state: the one rule `ci-admin` and the dashboard both show."""

from datetime import UTC, datetime, timedelta

import pytest

from ci_common.models import ApiKey, ApiKeyId, UserId

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _key(*, expires_at: datetime | None = None, revoked_at: datetime | None = None) -> ApiKey:
    return ApiKey(
        id=ApiKeyId("0b7e3c1e-0000-4000-8000-000000000001"),
        user_id=UserId("0b7e3c1e-0000-4000-8000-000000000002"),
        name="laptop",
        prefix="ci_abcd",
        created_at=NOW - timedelta(days=1),
        expires_at=expires_at,
        revoked_at=revoked_at,
        last_used_at=None,
    )


@pytest.mark.parametrize(
    ("key", "state", "usable"),
    [
        (_key(), "active", True),
        (_key(expires_at=NOW + timedelta(seconds=1)), "active", True),
        (_key(expires_at=NOW), "expired", False),
        (_key(revoked_at=NOW - timedelta(hours=1)), "revoked", False),
        # Revoked wins over expired: revoking is what someone did on purpose.
        (_key(expires_at=NOW - timedelta(days=1), revoked_at=NOW), "revoked", False),
    ],
)
def test_state_and_usability_agree(key: ApiKey, state: str, usable: bool) -> None:
    assert key.state(NOW) == state
    assert key.is_usable(NOW) is usable
