"""Versioned schema migrations for PostgreSQL, applied in order when a process connects.

The applied versions are rows of `schema_migrations`. Each step runs in its own transaction
that first takes a transaction-scoped advisory lock, so processes starting together migrate
one after the other: the second finds the step applied and does nothing. A process that finds
the schema current skips the lock altogether. A database newer than this code is refused
rather than misread. Never edit a released step; add one.

Numbering is this backend's own (PostgreSQL starts from today's whole schema in one step;
SQLite's history of in-place upgrades does not apply to it).
"""

from __future__ import annotations

import asyncpg

from ci_common.errors import StorageError

MIGRATION_LOCK_KEY = 0x63695F6D6967  # "ci_mig": one advisory lock id for every process

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

# v1: everything SQLite's seven steps built, in PostgreSQL's types: UUID ids, timestamptz,
# JSON kept as written (`json`, not `jsonb`, so an environment keeps its order), log text as
# UTF-8 bytes (`bytea`: PostgreSQL text cannot hold NUL, a test's output can), and uploads in
# blocks of bytea rows, written and read a block at a time without a shared filesystem.
_V1_SCHEMA = """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta (key, value)
    VALUES ('installation_id', substr(md5(random()::text || clock_timestamp()::text), 1, 12));
CREATE TABLE users (
    id uuid PRIMARY KEY,
    position bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    name text NOT NULL,
    email text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    position bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users(id),
    status text NOT NULL,
    conclusion text,
    exit_code integer,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    container_id text,
    log_cursor text,
    log_bytes bigint NOT NULL DEFAULT 0,
    last_log_seq integer NOT NULL DEFAULT 0,
    archive_bytes bigint NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    pytest_args json NOT NULL DEFAULT '[]',
    env json NOT NULL DEFAULT '{}',
    project text,
    git json,
    python text,
    extras json,
    dependency_groups json
);
CREATE INDEX jobs_user_created ON jobs (user_id, created_at DESC);
CREATE INDEX jobs_user_project_created ON jobs (user_id, project, created_at DESC);
CREATE INDEX jobs_active ON jobs (status, created_at) WHERE status <> 'completed';
CREATE TABLE log_chunks (
    job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq integer NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE job_archives (
    job_id uuid PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    bytes bigint NOT NULL
);
CREATE TABLE job_archive_blocks (
    job_id uuid NOT NULL REFERENCES job_archives(job_id) ON DELETE CASCADE,
    block integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (job_id, block)
);
CREATE TABLE python_runtimes (
    version text PRIMARY KEY,
    python text NOT NULL,
    image text NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    published_at timestamptz NOT NULL
);
"""

# v2 (SQLite's v8): per-test results, with the results stream's cursor on the job row, the
# job's content hashes (for flaky tests), pytest's exit status once its session ended, and
# which failures a rerun runs. A result's message, traceback and output are UTF-8 `bytea`, as
# log chunks are: a test's output can hold NUL, which SQLite's TEXT keeps and PostgreSQL's
# text refuses. `rerun_of` has no foreign key: retention may delete the job a rerun came from.
_V2_TEST_RESULTS = """
ALTER TABLE jobs
    ADD COLUMN results_cursor text,
    ADD COLUMN tests_reported integer NOT NULL DEFAULT 0,
    ADD COLUMN tests_note text,
    ADD COLUMN files_hash text,
    ADD COLUMN content_hash text,
    ADD COLUMN rerun_of uuid,
    ADD COLUMN rerun_node_ids json NOT NULL DEFAULT '[]',
    ADD COLUMN session_exitstatus integer;
CREATE TABLE test_results (
    job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx integer NOT NULL,
    nodeid text NOT NULL,
    outcome text NOT NULL,
    phase text NOT NULL,
    duration double precision NOT NULL,
    message bytea,
    traceback bytea,
    output bytea,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX test_results_outcome ON test_results (job_id, outcome, idx);
CREATE INDEX jobs_user_content_hash ON jobs (user_id, content_hash)
    WHERE content_hash IS NOT NULL;
"""

# v3 (SQLite's v9): the file patterns a job keeps, the files kept (numbered bytea blocks, as
# uploads are), and an index for retention to find the oldest finished jobs.
_V3_ARTIFACTS = """
ALTER TABLE jobs ADD COLUMN artifacts json NOT NULL DEFAULT '[]';
CREATE TABLE job_artifacts (
    job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    path text NOT NULL,
    size bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, path)
);
CREATE TABLE artifact_blocks (
    job_id uuid NOT NULL,
    path text NOT NULL,
    idx integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (job_id, path, idx),
    FOREIGN KEY (job_id, path) REFERENCES job_artifacts (job_id, path) ON DELETE CASCADE
);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status = 'completed';
"""

# v4 (SQLite's v10, the web dashboard): an admin flag on users, and the secret that signs
# browser sessions, kept in the database so every server replica accepts a cookie any other
# one issued. Two `gen_random_uuid()` (PostgreSQL's strong random source) make 64 hex digits
# with 244 random bits, without the pgcrypto extension.
_V4_ADMINS_AND_SESSION_SECRET = """
ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
INSERT INTO meta (key, value)
    VALUES ('session_secret',
            replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
    ON CONFLICT (key) DO NOTHING;
"""

# v5 (SQLite's v11, several engines): the engine a job runs on, and each engine's heartbeat.
_V5_ENGINES = """
ALTER TABLE jobs ADD COLUMN engine text;
CREATE TABLE engines (
    name text PRIMARY KEY,
    capacity integer NOT NULL,
    last_seen timestamptz NOT NULL
);
"""

MIGRATIONS: tuple[str, ...] = (
    _V1_SCHEMA,  # v1
    _V2_TEST_RESULTS,  # v2
    _V3_ARTIFACTS,  # v3
    _V4_ADMINS_AND_SESSION_SECRET,  # v4
    _V5_ENGINES,  # v5
)
SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> int:
    """The applied version; 0 for an empty database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(max(version), 0) FROM schema_migrations"))


async def migrate(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, *, target: int = SCHEMA_VERSION
) -> int:
    """Bring the schema up to `target`, each step in its own locked transaction."""
    version = await schema_version(conn)
    _refuse_newer(version)
    while version < target:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await conn.execute(_SCHEMA_MIGRATIONS)
            version = await schema_version(conn)  # another process may have migrated meanwhile
            _refuse_newer(version)
            if version >= target:
                break
            await conn.execute(MIGRATIONS[version])
            version += 1
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
    return version


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the database has schema version {version}, newer than this code knows "
            f"({SCHEMA_VERSION}); upgrade the ci service"
        )
