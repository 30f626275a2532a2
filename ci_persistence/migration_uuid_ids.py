"""Schema step 6: users and API keys get UUID ids, like jobs, with every reference kept.

Integer ids were guessable and tied to SQLite's rowids, so they would not survive a move to
PostgreSQL. SQLite cannot change a column's type in place, so the step rebuilds `users` and
`api_keys` under new ids and rewrites the references to them (`api_keys.user_id`,
`jobs.user_id`). `jobs` is rebuilt from its own current definition (whatever columns other
steps have added by then) with only `user_id`'s type changed, and its indexes and triggers are
re-created as they were. Runs with foreign keys off (as SQLite's documented procedure for
table rebuilds requires; `migrate` does that) and checks them before it commits.
"""

from __future__ import annotations

import re
import uuid

import aiosqlite

_USERS = """
CREATE TABLE users_v6 (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
)"""

_API_KEYS = """
CREATE TABLE api_keys_v6 (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT
)"""

_JOBS_USER_ID = re.compile(r"\buser_id\s+INTEGER\b", re.IGNORECASE)


async def uuid_ids_for_users_and_keys(conn: aiosqlite.Connection) -> None:
    """Give every user and key a UUID4 and point every reference at the new ids."""
    await conn.execute("CREATE TEMP TABLE user_ids (old INTEGER PRIMARY KEY, new TEXT NOT NULL)")
    async with conn.execute("SELECT id FROM users") as cursor:
        old_users = [int(row[0]) for row in await cursor.fetchall()]
    await conn.executemany(
        "INSERT INTO user_ids (old, new) VALUES (?, ?)",
        [(old, str(uuid.uuid4())) for old in old_users],
    )
    await conn.execute(_USERS)
    await conn.execute(
        "INSERT INTO users_v6 (id, name, email, active, created_at) "
        "SELECT m.new, u.name, u.email, u.active, u.created_at "
        "FROM users u JOIN user_ids m ON m.old = u.id"
    )
    await conn.execute(_API_KEYS)
    async with conn.execute("SELECT id FROM api_keys") as cursor:
        old_keys = [int(row[0]) for row in await cursor.fetchall()]
    await conn.execute("CREATE TEMP TABLE key_ids (old INTEGER PRIMARY KEY, new TEXT NOT NULL)")
    await conn.executemany(
        "INSERT INTO key_ids (old, new) VALUES (?, ?)",
        [(old, str(uuid.uuid4())) for old in old_keys],
    )
    await conn.execute(
        "INSERT INTO api_keys_v6 (id, user_id, name, key_hash, prefix, created_at, expires_at, "
        "revoked_at, last_used_at) "
        "SELECT k.new, m.new, a.name, a.key_hash, a.prefix, a.created_at, a.expires_at, "
        "a.revoked_at, a.last_used_at "
        "FROM api_keys a JOIN key_ids k ON k.old = a.id JOIN user_ids m ON m.old = a.user_id"
    )
    await _rebuild_jobs_with_text_user_ids(conn)
    await conn.execute("DROP TABLE api_keys")
    await conn.execute("DROP TABLE users")
    await conn.execute("ALTER TABLE users_v6 RENAME TO users")
    await conn.execute("ALTER TABLE api_keys_v6 RENAME TO api_keys")
    await conn.execute("CREATE INDEX api_keys_user ON api_keys(user_id)")
    await conn.execute("DROP TABLE temp.user_ids")
    await conn.execute("DROP TABLE temp.key_ids")


async def _rebuild_jobs_with_text_user_ids(conn: aiosqlite.Connection) -> None:
    async with conn.execute(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'jobs' AND sql IS NOT NULL"
    ) as cursor:
        rows = [(str(row[0]), str(row[1])) for row in await cursor.fetchall()]
    table_sql = next(sql for kind, sql in rows if kind == "table")
    dependents = [sql for kind, sql in rows if kind in ("index", "trigger")]
    new_sql, replaced = _JOBS_USER_ID.subn("user_id TEXT", table_sql, count=1)
    if replaced != 1:
        raise RuntimeError(f"unexpected jobs table definition: {table_sql}")
    new_sql = re.sub(r"^CREATE TABLE\s+\"?jobs\"?", "CREATE TABLE jobs_v6", new_sql, count=1)
    await conn.execute(new_sql)
    async with conn.execute("SELECT name FROM pragma_table_info('jobs') ORDER BY cid") as cursor:
        columns = [str(row[0]) for row in await cursor.fetchall()]
    listed = ", ".join(f'"{name}"' for name in columns)
    selected = ", ".join(
        "(SELECT new FROM user_ids WHERE old = jobs.user_id)" if name == "user_id" else f'"{name}"'
        for name in columns
    )
    await conn.execute(f"INSERT INTO jobs_v6 ({listed}) SELECT {selected} FROM jobs")
    await conn.execute("DROP TABLE jobs")
    await conn.execute("ALTER TABLE jobs_v6 RENAME TO jobs")
    for sql in dependents:
        await conn.execute(sql)
