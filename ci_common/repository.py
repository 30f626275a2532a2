"""The storage interface every process programs against.

`JobRepository` holds jobs, their uploaded archives and their logs; `UserRepository` holds users
and API keys. SQLite and PostgreSQL implement them (`ci_persistence`, `ci_persistence.postgres`)
and pass the same contract tests (`tests/integration/persistence/`, run on both backends).

State changes are compare-and-set: each transition names the state it expects and reports
whether it happened, so two writers (two controllers by mistake, a server cancelling while the
controller finishes) can never both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO, BinaryIO, Protocol

from ci_common.job_options import JobOptions
from ci_common.models import (
    DEFAULT_ENGINE,
    ApiKey,
    ApiKeyId,
    Artifact,
    EngineStatus,
    Job,
    JobConclusion,
    JobId,
    JobStatus,
    LogChunk,
    User,
    UserId,
)
from ci_common.python_versions import PythonRuntime
from ci_common.queue_stats import QueueStats
from ci_common.test_results import TestResultRepository


class JobRepository(Protocol):
    """Jobs, archives and logs."""

    async def create_job(
        self, *, user_id: UserId, archive: bytes | BinaryIO, options: JobOptions | None = None
    ) -> Job:
        """Store a new queued job together with its uploaded archive and what the submit
        asked of it (`options`, checked already), atomically. A file is read from its start
        to its end in blocks, never whole."""
        ...

    async def get_job(self, job_id: JobId) -> Job:
        """The job, or `JobNotFoundError`."""
        ...

    async def get_jobs(self, job_ids: Sequence[JobId]) -> list[Job]:
        """The jobs that exist among `job_ids`, in one query (for followers of many jobs)."""
        ...

    async def list_jobs(
        self,
        *,
        user_id: UserId | None = None,
        status: JobStatus | None = None,
        project: str | None = None,
        limit: int = 50,
        conclusion: JobConclusion | None = None,
    ) -> list[Job]:
        """Jobs newest first, optionally one user's, of one status, of one project, of one
        conclusion."""
        ...

    async def find_job_ids(self, *, user_id: UserId, prefix: str, limit: int = 2) -> list[JobId]:
        """Up to `limit` ids of the user's jobs (all of them, however old) starting with
        `prefix`, in id order: a short id is unique when this returns one."""
        ...

    async def list_active_jobs(self) -> list[Job]:
        """Every queued or running job, oldest first (the controller's work list)."""
        ...

    async def mark_running(
        self, job_id: JobId, *, container_id: str | None, engine: str = DEFAULT_ENGINE
    ) -> bool:
        """queued → running (its first attempt) on `engine`, once: the claim. False when it was
        not queued any more (cancelled, or claimed by another engine's controller)."""
        ...

    async def requeue_job(self, job_id: JobId, *, engine: str) -> bool:
        """running → queued for a job of `engine` that has no container yet (its engine was
        lost before it started), so another engine claims it. False if that is not so."""
        ...

    async def restart_job(self, job_id: JobId) -> Job | None:
        """Start a running job over, as after `mark_running`: no container, no log cursor,
        one more attempt. For a job whose tests never began. None if it is not running."""
        ...

    async def set_container(self, job_id: JobId, container_id: str) -> None:
        """Record the container of a running job, so a restarted controller can adopt it."""
        ...

    async def complete_job(
        self,
        job_id: JobId,
        *,
        conclusion: JobConclusion,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> bool:
        """queued/running → completed, once. False when it was already completed."""
        ...

    async def request_cancel(self, job_id: JobId) -> Job:
        """Ask for cancellation; idempotent. A queued job is completed as cancelled at once,
        a running one is flagged for the controller, a completed one is left as it is."""
        ...

    async def get_archive(self, job_id: JobId) -> bytes | None:
        """The uploaded zip, or None once it has been deleted. Whole in memory: for tests and
        tools; the controller uses `copy_archive`."""
        ...

    async def copy_archive(self, job_id: JobId, into: BinaryIO) -> bool:
        """Write the uploaded zip into `into` in blocks (never whole in memory); False, with
        nothing written, once it has been deleted."""
        ...

    async def delete_archive(self, job_id: JobId) -> None:
        """Drop the stored upload once the job no longer needs it."""
        ...

    async def append_log(
        self, job_id: JobId, data: str, *, cursor: str | None, after_seq: int | None = None
    ) -> LogChunk:
        """Append a chunk with the next `seq` and, in the same transaction, the follower's
        cursor into the container's output (so a crash can neither lose nor repeat a line).
        With `after_seq`, only while that is still the last chunk's seq, else
        `ConcurrentWriterError` and nothing stored (two writers never both append)."""
        ...

    async def read_logs(
        self,
        job_id: JobId,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[LogChunk]:
        """Chunks with `seq > after_seq`, in order: at most `limit` of them and, with
        `max_bytes`, no more than fit in that many bytes of UTF-8 `data` (but always the first
        one, however large). Readers page through a log with this, so what a page holds in
        memory is bounded whatever the log's size and however its chunks are cut."""
        ...

    async def change_counter(self) -> int:
        """A number that changes whenever another connection commits: a cheap way to notice
        new jobs, chunks or cancel requests without re-reading everything."""
        ...

    async def reclaim_space(self) -> None:
        """Return freed storage to the file system (the controller calls it now and then)."""
        ...

    async def installation_id(self) -> str:
        """A stable id of this database, used to label the containers it owns."""
        ...


class ArtifactRepository(Protocol):
    """Files kept from jobs' containers, stored in blocks so downloads stream."""

    async def store_artifact(
        self, job_id: JobId, *, path: str, size: int, content: IO[bytes]
    ) -> Artifact:
        """Store `size` bytes read from `content` as the job's file `path`, replacing one of
        that path (a collection repeated after a restart stores it once)."""
        ...

    async def list_artifacts(self, job_id: JobId) -> list[Artifact]:
        """The job's kept files, by path."""
        ...

    async def get_artifact(self, job_id: JobId, path: str) -> Artifact | None: ...

    async def read_artifact_block(self, job_id: JobId, path: str, index: int) -> bytes | None:
        """Block `index` (from 0) of the file's content; None past its end."""
        ...


class RetentionRepository(Protocol):
    """Deleting jobs past the retention period."""

    async def delete_expired_jobs(
        self, *, finished_before: datetime, max_jobs: int = 10, batch_rows: int = 200
    ) -> list[JobId]:
        """Delete up to `max_jobs` jobs completed before `finished_before`, oldest first, with
        their logs, files, uploads and results, in transactions of at most `batch_rows` rows;
        returns their ids."""
        ...


class UserRepository(Protocol):
    """Users and their API keys."""

    async def create_user(self, *, name: str, email: str, is_admin: bool = False) -> User:
        """A new active user; `ConflictError` if the email is taken."""
        ...

    async def get_user(self, user_id: UserId) -> User: ...

    async def get_user_by_email(self, email: str) -> User: ...

    async def list_users(self) -> list[User]: ...

    async def set_user_active(self, user_id: UserId, *, active: bool) -> User: ...

    async def set_user_admin(self, user_id: UserId, *, is_admin: bool) -> User:
        """Grant or take back the admin flag (the dashboard's /ui/admin pages)."""
        ...

    async def create_api_key(
        self,
        *,
        user_id: UserId,
        name: str,
        key_hash: str,
        prefix: str,
        expires_at: datetime | None,
    ) -> ApiKey: ...

    async def list_api_keys(self, *, user_id: UserId | None = None) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: ApiKeyId) -> ApiKey:
        """`ConflictError` if it was revoked already."""
        ...

    async def find_api_key(self, key_hash: str) -> tuple[ApiKey, User] | None: ...

    async def touch_api_key(self, key_id: ApiKeyId, *, used_at: datetime) -> None:
        """Record use; callers throttle this so a busy key is not a write per request."""
        ...


class RuntimeRepository(Protocol):
    """The Python versions the controller offers (`ci_common.python_versions`)."""

    async def publish_runtimes(self, runtimes: Sequence[PythonRuntime]) -> None:
        """Replace the published versions with `runtimes`, atomically (controller, at start)."""
        ...

    async def list_runtimes(self) -> list[PythonRuntime]:
        """The published versions, oldest first; empty before any controller started."""
        ...


class QueueStatsRepository(Protocol):
    """The numbers `/metrics` reports from the database (the same for every process)."""

    async def queue_stats(self) -> QueueStats:
        """Queued and running jobs, the oldest queued job's `created_at`, and the bytes of log
        stored for the jobs kept."""
        ...


class EngineRepository(Protocol):
    """Each engine's heartbeat, which its controller writes on every full pass."""

    async def record_engine(self, name: str, *, capacity: int) -> None:
        """`name` is alive now with room for `capacity` jobs."""
        ...

    async def list_engines(self) -> list[EngineStatus]:
        """Every engine that ever reported, by name, with its running jobs counted."""
        ...


class JobResultsRepository(JobRepository, TestResultRepository, Protocol):
    """What the controller needs: jobs, their logs and their test results."""


class ControllerRepository(
    JobResultsRepository,
    ArtifactRepository,
    RetentionRepository,
    QueueStatsRepository,
    EngineRepository,
    Protocol,
):
    """What the controller stores: jobs and logs, test results, the files jobs kept, and
    retention; the queue's numbers for its `/metrics`; and its engine's heartbeat."""


class Repository(ControllerRepository, UserRepository, RuntimeRepository, Protocol):
    """Both halves, as one open database provides them."""

    async def check_writable(self) -> None:
        """Raise `DatabaseUnavailableError` unless a write could start within about a second
        (`/health` asks this)."""
        ...

    async def session_secret(self) -> str:
        """The secret that signs browser session cookies, the same for every process on this
        database (so any server replica accepts a cookie another issued)."""
        ...

    async def close(self) -> None: ...
