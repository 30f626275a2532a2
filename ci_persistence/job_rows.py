"""A stored job row as a `Job`, for both backends: they select the same columns
(`columns.JOB_COLUMNS`) and differ only in how a moment is stored (ISO text in SQLite, a
`timestamptz` in PostgreSQL), so one mapping reads both and a new field is read in one place."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from ci_common.models import GitInfo, Job, JobConclusion, JobId, JobStatus, UserId


class Row(Protocol):
    """What `sqlite3.Row` and `asyncpg.Record` both are: values by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def job_from_columns(row: Row, *, moment: Callable[[Any], datetime | None]) -> Job:
    """The job in `row`; `moment` turns a stored timestamp (or NULL) into a datetime."""
    created_at = moment(row["created_at"])
    assert created_at is not None
    return Job(
        id=JobId(str(row["id"])),
        user_id=UserId(str(row["user_id"])),
        status=JobStatus(row["status"]),
        conclusion=JobConclusion(row["conclusion"]) if row["conclusion"] else None,
        exit_code=row["exit_code"],
        error=row["error"],
        created_at=created_at,
        started_at=moment(row["started_at"]),
        finished_at=moment(row["finished_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        container_id=row["container_id"],
        log_cursor=row["log_cursor"],
        log_bytes=row["log_bytes"],
        last_log_seq=row["last_log_seq"],
        archive_bytes=row["archive_bytes"],
        attempts=row["attempts"],
        pytest_args=tuple(json.loads(row["pytest_args"])),
        env=json.loads(row["env"]),
        project=row["project"],
        git=GitInfo.model_validate_json(row["git"]) if row["git"] else None,
        python=row["python"],
        extras=_names(row["extras"]),
        groups=_names(row["dependency_groups"]),
        results_cursor=row["results_cursor"],
        tests_reported=row["tests_reported"],
        tests_note=row["tests_note"],
        files_hash=row["files_hash"],
        content_hash=row["content_hash"],
        rerun_of=JobId(str(row["rerun_of"])) if row["rerun_of"] else None,
        rerun_node_ids=tuple(json.loads(row["rerun_node_ids"])),
        session_exitstatus=row["session_exitstatus"],
        artifacts=tuple(json.loads(row["artifacts"])),
        engine=row["engine"],
    )


def names_text(names: tuple[str, ...] | None) -> str | None:
    """Extras or dependency groups as stored: a JSON array, or NULL for the automatic choice."""
    return None if names is None else json.dumps(list(names))


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(json.loads(text))
