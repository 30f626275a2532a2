"""Versioned schema migrations, applied in order on open, tracked in `PRAGMA user_version`.

Each step upgrades a database of the previous version in place; never edit a released step,
add a new one. A database newer than this code is refused rather than misread.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import aiosqlite

from ci_common.errors import StorageError
from ci_persistence.migration_uuid_ids import uuid_ids_for_users_and_keys

Step = str | Callable[[aiosqlite.Connection], Awaitable[None]]
"""A step is a script of statements, or a function for what SQL alone cannot do."""

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

# v5: the Python version each job runs on, and the versions the controller offers (it writes
# them at start; every server replica reads them for `GET /runtimes` and a submit's choice).
_V5_PYTHON_VERSIONS = """
ALTER TABLE jobs ADD COLUMN python TEXT;
CREATE TABLE python_runtimes (
    version TEXT PRIMARY KEY,
    python TEXT NOT NULL,
    image TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    published_at TEXT NOT NULL
);
"""

# v7: the extras and dependency groups a job chose (JSON arrays; NULL: the automatic choice).
_V7_DEPENDENCY_CHOICE = """
ALTER TABLE jobs ADD COLUMN extras TEXT;
ALTER TABLE jobs ADD COLUMN dependency_groups TEXT;
"""

# v8: per-test results as the controller reads them from the job's results stream (with the
# stream's cursor on the job row, written in the same transaction), what a job's content was
# (for flaky tests), pytest's exit status once its session ended (stored with the results
# before it, so a restarted controller knows), and which failures a rerun runs.
_V8_TEST_RESULTS = """
CREATE TABLE test_results (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    nodeid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    phase TEXT NOT NULL,
    duration REAL NOT NULL,
    message TEXT,
    traceback TEXT,
    output TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE INDEX test_results_outcome ON test_results(job_id, outcome, idx);
ALTER TABLE jobs ADD COLUMN results_cursor TEXT;
ALTER TABLE jobs ADD COLUMN tests_reported INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN tests_note TEXT;
ALTER TABLE jobs ADD COLUMN files_hash TEXT;
ALTER TABLE jobs ADD COLUMN content_hash TEXT;
ALTER TABLE jobs ADD COLUMN rerun_of TEXT;
ALTER TABLE jobs ADD COLUMN rerun_node_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN session_exitstatus INTEGER;
CREATE INDEX jobs_user_content_hash ON jobs(user_id, content_hash) WHERE content_hash IS NOT NULL;
"""

# v9 (artifacts): the file patterns a job keeps, the files kept (in blocks, so a download
# streams one block at a time from any server replica), and an index for retention to find
# the oldest finished jobs.
_V9_ARTIFACTS = """
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

# v10 (web dashboard): an admin flag on users, and the secret that signs browser sessions, kept
# in the database so every server replica accepts a cookie any other one issued.
_ADMINS_AND_SESSION_SECRET = """
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
INSERT OR IGNORE INTO meta (key, value) VALUES ('session_secret', lower(hex(randomblob(32))));
"""

# v11 (several engines): the engine a job runs on, recorded when a controller claims it, and
# each engine's heartbeat (capacity, last seen), which its controller writes every pass.
_ENGINES = """
ALTER TABLE jobs ADD COLUMN engine TEXT;
CREATE TABLE engines (
    name TEXT PRIMARY KEY,
    capacity INTEGER NOT NULL,
    last_seen TEXT NOT NULL
);
"""

MIGRATIONS: tuple[Step, ...] = (
    _V1_BASE,
    _V2_ARCHIVES_AND_LOG_CURSOR,
    _V3_ATTEMPTS,
    _V4_JOB_OPTIONS,
    _V5_PYTHON_VERSIONS,
    uuid_ids_for_users_and_keys,  # v6: users and API keys get UUID ids, references kept
    _V7_DEPENDENCY_CHOICE,  # v7
    _V8_TEST_RESULTS,  # v8
    _V9_ARTIFACTS,  # v9
    _ADMINS_AND_SESSION_SECRET,  # v10
    _ENGINES,  # v11
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
    foreign_keys = await _pragma(conn, "foreign_keys")
    # SQLite's procedure for table rebuilds: foreign keys off (only possible outside a
    # transaction), then checked before each step commits.
    await conn.execute("PRAGMA foreign_keys = OFF")
    try:
        return await _migrate(conn, version=version, target=target)
    finally:
        await conn.execute(f"PRAGMA foreign_keys = {foreign_keys}")


async def _migrate(conn: aiosqlite.Connection, *, version: int, target: int) -> int:
    while version < target:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            version = await _user_version(conn)
            if version >= target:
                await conn.rollback()
                break
            step = MIGRATIONS[version]
            if isinstance(step, str):
                for statement in _statements(step):
                    await conn.execute(statement)
            else:
                await step(conn)
            async with conn.execute("PRAGMA foreign_key_check") as cursor:
                broken = list(await cursor.fetchall())
            if broken:
                raise StorageError(f"schema step {version + 1} broke references: {broken[:5]}")
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
    return await _pragma(conn, "user_version")


async def _pragma(conn: aiosqlite.Connection, name: str) -> int:
    async with conn.execute(f"PRAGMA {name}") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
