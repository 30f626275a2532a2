"""Users and API keys in SQLite (the `UserRepository` half)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime

from ci_common.errors import ApiKeyNotFoundError, ConflictError, UserNotFoundError
from ci_common.models import ApiKey, ApiKeyId, User, UserId
from ci_persistence.columns import API_KEY_COLUMNS as _KEY_COLUMNS
from ci_persistence.columns import USER_COLUMNS as _USER_COLUMNS
from ci_persistence.database import SqliteDatabase, from_text, now_text, to_text
from ci_persistence.uncancellable import uncancellable


def user_from_row(row: sqlite3.Row) -> User:
    return User(
        id=UserId(row["id"]),
        name=row["name"],
        email=row["email"],
        active=bool(row["active"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        is_admin=bool(row["is_admin"]),
    )


def api_key_from_row(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=ApiKeyId(row["id"]),
        user_id=UserId(row["user_id"]),
        name=row["name"],
        prefix=row["prefix"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=from_text(row["expires_at"]),
        revoked_at=from_text(row["revoked_at"]),
        last_used_at=from_text(row["last_used_at"]),
    )


class SqliteUsers:
    """Implements `ci_common.UserRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

    @uncancellable
    async def create_user(self, *, name: str, email: str, is_admin: bool = False) -> User:
        try:
            user_id = UserId(str(uuid.uuid4()))
            async with self._db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO users (id, name, email, active, created_at, is_admin) "
                    "VALUES (?, ?, ?, 1, ?, ?)",
                    (user_id, name, email, now_text(), int(is_admin)),
                )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(
                f"a user with email {email} already exists; "
                f"`ci-admin user get --email {email}` shows it"
            ) from exc
        return await self.get_user(user_id)

    async def get_user(self, user_id: UserId) -> User:
        row = await self._db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
        )
        if row is None:
            raise UserNotFoundError(str(user_id))
        return user_from_row(row)

    async def get_user_by_email(self, email: str) -> User:
        row = await self._db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE email = ?", (email,)
        )
        if row is None:
            raise UserNotFoundError(email)
        return user_from_row(row)

    async def list_users(self) -> list[User]:
        rows = await self._db.fetch_all(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, rowid"
        )
        return [user_from_row(row) for row in rows]

    async def set_user_active(self, user_id: UserId, *, active: bool) -> User:
        return await self._set_user_flag(user_id, "active", active)

    async def set_user_admin(self, user_id: UserId, *, is_admin: bool) -> User:
        return await self._set_user_flag(user_id, "is_admin", is_admin)

    async def _set_user_flag(self, user_id: UserId, column: str, value: bool) -> User:
        """Set one of the user's boolean columns (a name of ours, never input)."""
        changed = await self._db.execute(
            f"UPDATE users SET {column} = ? WHERE id = ?", (int(value), user_id)
        )
        if changed == 0:
            raise UserNotFoundError(str(user_id))
        return await self.get_user(user_id)

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
        await self.get_user(user_id)
        key_id = ApiKeyId(str(uuid.uuid4()))
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO api_keys (id, user_id, name, key_hash, prefix, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    user_id,
                    name,
                    key_hash,
                    prefix,
                    now_text(),
                    None if expires_at is None else to_text(expires_at),
                ),
            )
        return await self._get_api_key(key_id)

    async def _get_api_key(self, key_id: ApiKeyId) -> ApiKey:
        row = await self._db.fetch_one(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
        )
        if row is None:
            raise ApiKeyNotFoundError(key_id)
        return api_key_from_row(row)

    async def list_api_keys(self, *, user_id: UserId | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = await self._db.fetch_all(
                f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, rowid"
            )
        else:
            rows = await self._db.fetch_all(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY created_at, rowid",
                (user_id,),
            )
        return [api_key_from_row(row) for row in rows]

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKey:
        key = await self._get_api_key(key_id)
        changed = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now_text(), key_id),
        )
        if changed == 0:
            raise ConflictError(f"API key {key.id} ({key.prefix}…) is revoked already")
        return await self._get_api_key(key_id)

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, User] | None:
        row = await self._db.fetch_one(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
        )
        if row is None:
            return None
        key = api_key_from_row(row)
        return key, await self.get_user(key.user_id)

    async def touch_api_key(self, key_id: ApiKeyId, *, used_at: datetime) -> None:
        await self._db.execute(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (to_text(used_at), key_id)
        )
