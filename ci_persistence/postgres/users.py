"""Users and API keys in PostgreSQL (the `UserRepository` half).

Email addresses are unique whatever their case (a unique index on `lower(email)`, as SQLite's
`COLLATE NOCASE`); lists keep creation order through an identity column.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from ci_common.errors import ApiKeyNotFoundError, ConflictError, UserNotFoundError
from ci_common.models import ApiKey, ApiKeyId, User, UserId
from ci_persistence.columns import API_KEY_COLUMNS, USER_COLUMNS
from ci_persistence.postgres.database import PostgresDatabase, Record
from ci_persistence.postgres.ids import as_uuid
from ci_persistence.uncancellable import uncancellable


def user_from_record(row: Record) -> User:
    return User(
        id=UserId(str(row["id"])),
        name=row["name"],
        email=row["email"],
        active=row["active"],
        created_at=row["created_at"],
        is_admin=row["is_admin"],
    )


def api_key_from_record(row: Record) -> ApiKey:
    return ApiKey(
        id=ApiKeyId(str(row["id"])),
        user_id=UserId(str(row["user_id"])),
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


class PostgresUsers:
    """Implements `ci_common.UserRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    @uncancellable
    async def create_user(self, *, name: str, email: str, is_admin: bool = False) -> User:
        try:
            row = await self._db.fetch_one(
                "INSERT INTO users (id, name, email, is_admin) VALUES ($1, $2, $3, $4) "
                f"RETURNING {USER_COLUMNS}",
                uuid.uuid4(),
                name,
                email,
                is_admin,
            )
        except asyncpg.UniqueViolationError as exc:
            raise ConflictError(
                f"a user with email {email} already exists; "
                f"`ci-admin user get --email {email}` shows it"
            ) from exc
        assert row is not None
        return user_from_record(row)

    async def get_user(self, user_id: UserId) -> User:
        key = as_uuid(user_id)
        row = None
        if key is not None:
            row = await self._db.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", key)
        if row is None:
            raise UserNotFoundError(str(user_id))
        return user_from_record(row)

    async def get_user_by_email(self, email: str) -> User:
        row = await self._db.fetch_one(
            f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email
        )
        if row is None:
            raise UserNotFoundError(email)
        return user_from_record(row)

    async def list_users(self) -> list[User]:
        rows = await self._db.fetch_all(
            f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, position"
        )
        return [user_from_record(row) for row in rows]

    async def set_user_active(self, user_id: UserId, *, active: bool) -> User:
        return await self._set_user_flag(user_id, "active", active)

    async def set_user_admin(self, user_id: UserId, *, is_admin: bool) -> User:
        return await self._set_user_flag(user_id, "is_admin", is_admin)

    async def _set_user_flag(self, user_id: UserId, column: str, value: bool) -> User:
        """Set one of the user's boolean columns (a name of ours, never input)."""
        key = as_uuid(user_id)
        row = None
        if key is not None:
            row = await self._db.fetch_one(
                f"UPDATE users SET {column} = $1 WHERE id = $2 RETURNING {USER_COLUMNS}",
                value,
                key,
            )
        if row is None:
            raise UserNotFoundError(str(user_id))
        return user_from_record(row)

    @uncancellable
    async def create_api_key(
        self,
        *,
        user_id: UserId,
        name: str,
        key_hash: str,
        prefix: str,
        expires_at: datetime | None,
    ) -> ApiKey:
        user = await self.get_user(user_id)
        try:
            row = await self._db.fetch_one(
                f"INSERT INTO api_keys (id, user_id, name, key_hash, prefix, expires_at) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {API_KEY_COLUMNS}",
                uuid.uuid4(),
                as_uuid(user.id),
                name,
                key_hash,
                prefix,
                expires_at,
            )
        except asyncpg.ForeignKeyViolationError as exc:  # the user was deleted meanwhile
            raise UserNotFoundError(str(user_id)) from exc
        assert row is not None
        return api_key_from_record(row)

    async def _get_api_key(self, key_id: ApiKeyId) -> ApiKey:
        key = as_uuid(key_id)
        row = None
        if key is not None:
            row = await self._db.fetch_one(
                f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1", key
            )
        if row is None:
            raise ApiKeyNotFoundError(key_id)
        return api_key_from_record(row)

    async def list_api_keys(self, *, user_id: UserId | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = await self._db.fetch_all(
                f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, position"
            )
        else:
            key = as_uuid(user_id)
            if key is None:
                return []
            rows = await self._db.fetch_all(
                f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 "
                "ORDER BY created_at, position",
                key,
            )
        return [api_key_from_record(row) for row in rows]

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKey:
        key = await self._get_api_key(key_id)
        row = await self._db.fetch_one(
            f"UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL "
            f"RETURNING {API_KEY_COLUMNS}",
            as_uuid(key.id),
        )
        if row is None:
            raise ConflictError(f"API key {key.id} ({key.prefix}…) is revoked already")
        return api_key_from_record(row)

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, User] | None:
        row = await self._db.fetch_one(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
        )
        if row is None:
            return None
        key = api_key_from_record(row)
        return key, await self.get_user(key.user_id)

    async def touch_api_key(self, key_id: ApiKeyId, *, used_at: datetime) -> None:
        key = as_uuid(key_id)
        if key is not None:
            await self._db.execute(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2", used_at, key
            )
