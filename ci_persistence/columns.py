"""The columns each backend selects for an entity: one list, so both backends read the same
fields and a column added to one backend's schema but not the other's fails that backend's
contract tests at once, instead of silently reading a default.

Adding a field to a model: add its column here, a migration step to each backend
(`ci_persistence/migrations.py`, `ci_persistence/postgres/migrations.py`), and read it in each
backend's row mapping (`job_from_row`, `job_from_record`, ...).
"""

from __future__ import annotations

JOB_COLUMNS = (
    "id, user_id, status, conclusion, exit_code, error, created_at, started_at, finished_at, "
    "cancel_requested, container_id, log_cursor, log_bytes, last_log_seq, archive_bytes, attempts, "
    "pytest_args, env, project, git, python, extras, dependency_groups, results_cursor, "
    "tests_reported, tests_note, files_hash, content_hash, rerun_of, rerun_node_ids, artifacts, "
    "session_exitstatus, engine"
)
USER_COLUMNS = "id, name, email, active, created_at, is_admin"
API_KEY_COLUMNS = "id, user_id, name, prefix, created_at, expires_at, revoked_at, last_used_at"


QUEUE_STATS = """
SELECT
    (SELECT COUNT(*) FROM jobs WHERE status = 'queued') AS queued,
    (SELECT COUNT(*) FROM jobs WHERE status = 'running') AS running,
    (SELECT MIN(created_at) FROM jobs WHERE status = 'queued') AS oldest_queued_at,
    (SELECT COALESCE(SUM(log_bytes), 0) FROM jobs) AS log_bytes
"""
"""The queue's numbers for `/metrics`, the same statement on both backends. Literal statuses,
not parameters: only then can the planner use the partial index of active jobs."""
