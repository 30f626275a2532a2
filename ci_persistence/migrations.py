"""Versioned schema migrations, applied in order on open, tracked in `PRAGMA user_version`.

Each step upgrades a database of the previous version in place; never edit a released step,
add a new one. A database newer than this code is refused rather than misread.
"""

from __future__ import annotations

import uuid

import aiosqlite

from ci_common.errors import StorageError

_V1_BASE = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT
);
CREATE INDEX api_keys_user ON api_keys(user_id);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    conclusion TEXT,
    exit_code INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    container_id TEXT
);
CREATE INDEX jobs_user_created ON jobs(user_id, created_at DESC);
CREATE INDEX jobs_active ON jobs(status, created_at) WHERE status != 'completed';
CREATE TABLE log_chunks (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""

# v2: uploads live in the database (any server replica and the controller reach them), and the
# controller's log bookkeeping moves onto the job row so appends stay one small transaction.
_V2_ARCHIVES_AND_LOG_CURSOR = """
CREATE TABLE job_archives (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    data BLOB NOT NULL
);
ALTER TABLE jobs ADD COLUMN archive_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN log_cursor TEXT;
ALTER TABLE jobs ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_log_seq INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET last_log_seq = COALESCE(
    (SELECT MAX(seq) FROM log_chunks WHERE log_chunks.job_id = jobs.id), 0);
UPDATE jobs SET log_bytes = COALESCE(
    (SELECT SUM(LENGTH(CAST(data AS BLOB))) FROM log_chunks WHERE log_chunks.job_id = jobs.id), 0);
"""

# v3: how often a job was started, so a start cut short by a controller's death is retried
# a bounded number of times.
_V3_ATTEMPTS = """
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET attempts = 1 WHERE started_at IS NOT NULL;
"""

# v4: what each job was asked to run (pytest arguments, environment) and what it tested (the
# project's name, its git commit), so `ci list --project` finds a project's jobs quickly.
_V4_JOB_OPTIONS = """
ALTER TABLE jobs ADD COLUMN pytest_args TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN project TEXT;
ALTER TABLE jobs ADD COLUMN git TEXT;
CREATE INDEX jobs_user_project_created ON jobs(user_id, project, created_at DESC);
"""

# v5 (artifacts): the file patterns a job keeps, the files kept (in blocks, so a download
# streams one block at a time from any server replica), and an index for retention to find
# the oldest finished jobs.
_V5_ARTIFACTS = """
ALTER TABLE jobs ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]';
CREATE TABLE job_artifacts (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, path)
);
CREATE TABLE artifact_blocks (
    job_id TEXT NOT NULL,
    path TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    FOREIGN KEY (job_id, path) REFERENCES job_artifacts(job_id, path) ON DELETE CASCADE
);
CREATE UNIQUE INDEX artifact_blocks_key ON artifact_blocks(job_id, path, idx);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE status = 'completed';
"""

MIGRATIONS: tuple[str, ...] = (
    _V1_BASE,
    _V2_ARCHIVES_AND_LOG_CURSOR,
    _V3_ATTEMPTS,
    _V4_JOB_OPTIONS,
    _V5_ARTIFACTS,
)
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: aiosqlite.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to `target`, each step in its own transaction. Returns the version."""
    version = await _user_version(conn)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the database has schema version {version}, newer than this code knows "
            f"({SCHEMA_VERSION}); upgrade the ci service"
        )
    while version < target:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            version = await _user_version(conn)
            if version >= target:
                await conn.rollback()
                break
            for statement in _statements(MIGRATIONS[version]):
                await conn.execute(statement)
            version += 1
            if version == 1:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('installation_id', ?)",
                    (uuid.uuid4().hex[:12],),
                )
            await conn.execute(f"PRAGMA user_version = {version}")
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
    return version


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
