"""API keys: how they look, how they are stored, and how a request is authenticated.

A key is `ci_` followed by 32 random bytes in URL-safe base64. It is shown once at creation;
the database keeps only its SHA-256 and a short prefix for people to recognise it by.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ci_common.errors import AuthenticationError
from ci_common.models import User
from ci_common.repository import UserRepository

KEY_PREFIX = "ci_"
DISPLAY_PREFIX_LENGTH = 10
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class NewApiKey:
    """A freshly generated key: `secret` is shown once and then forgotten."""

    secret: str
    key_hash: str
    prefix: str


def generate_api_key() -> NewApiKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(
        secret=secret, key_hash=hash_api_key(secret), prefix=secret[:DISPLAY_PREFIX_LENGTH]
    )


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(secret: str) -> bool:
    return secret.startswith(KEY_PREFIX) and len(secret) > len(KEY_PREFIX) + 20


async def authenticate(users: UserRepository, secret: str, *, now: datetime | None = None) -> User:
    """The active user owning `secret`, or `AuthenticationError` saying why not."""
    now = now or datetime.now(UTC)
    if not looks_like_api_key(secret):
        raise AuthenticationError(
            "malformed API key: keys look like ci_… ; ask an admin for one (ci-admin key create)"
        )
    found = await users.find_api_key(hash_api_key(secret))
    if found is None:
        raise AuthenticationError("unknown API key; check CI_API_KEY or ask an admin for a key")
    key, user = found
    if key.revoked_at is not None:
        raise AuthenticationError("this API key was revoked; ask an admin for a new one")
    if key.expires_at is not None and now >= key.expires_at:
        raise AuthenticationError("this API key has expired; ask an admin for a new one")
    if not user.active:
        raise AuthenticationError("this user is deactivated; ask an admin to activate it")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        await users.touch_api_key(key.id, used_at=now)
    return user
