"""The domain model shared by every process: users, API keys, jobs and log chunks.

These are storage-shaped records, not wire schemas: the server maps them to its own response
models, so internal fields (the container id, the log cursor) never leak over HTTP by accident.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NewType

from pydantic import BaseModel, ConfigDict, Field

JobId = NewType("JobId", str)
UserId = NewType("UserId", str)
"""A UUID4 string, like a job's: unguessable, and the same in SQLite and PostgreSQL."""
ApiKeyId = NewType("ApiKeyId", str)
"""A UUID4 string (not the key, which is never stored)."""


DEFAULT_ENGINE = "default"
"""The engine's name when a controller is given none: one engine works as before."""
ENGINE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""An engine's name: it goes into lock file names and container labels."""


class JobStatus(StrEnum):
    """Where a job is in its life: it only ever moves forward."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class JobConclusion(StrEnum):
    """How a completed job ended (GitHub's check-run vocabulary)."""

    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class User(_Record):
    """A person (or robot) who owns jobs and API keys."""

    id: UserId
    name: str
    email: str
    active: bool
    created_at: datetime
    is_admin: bool = False
    """May see and cancel every user's jobs and manage users in the web dashboard."""


class ApiKey(_Record):
    """An API key as stored: never the key itself, only its hash and a display prefix."""

    id: ApiKeyId
    user_id: UserId
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def is_usable(self, now: datetime) -> bool:
        """Whether the key may authenticate at `now` (not revoked, not expired)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def state(self, now: datetime) -> str:
        """`revoked`, `expired` or `active`: the one word `ci-admin` and the dashboard show."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


MAX_START_ATTEMPTS = 3
"""Starts of one job before it ends as `error`: a job whose tests never began because the
controller died while starting it is started again, but a job that keeps killing its starts
must not loop forever."""


class GitInfo(_Record):
    """Where the uploaded tree came from, when it was a git checkout (as the client saw it)."""

    commit: str
    """The full hash of `HEAD`."""
    branch: str | None
    """The checked-out branch; None for a detached `HEAD`."""
    dirty: bool
    """The work tree differed from `HEAD` (`git status --porcelain` printed something)."""


class Job(_Record):
    """One test run of one uploaded project.

    `cancel_requested` is desired state written by the server; `container_id`, `log_cursor` and
    `log_bytes` are the controller's bookkeeping so a restarted controller can adopt the job.
    """

    id: JobId
    user_id: UserId
    status: JobStatus
    conclusion: JobConclusion | None
    exit_code: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    container_id: str | None
    log_cursor: str | None
    log_bytes: int
    last_log_seq: int
    archive_bytes: int
    attempts: int = 0
    """How often the controller has started the job (a start cut short by a controller's
    death, before the tests ran, is tried again up to `MAX_START_ATTEMPTS`)."""
    pytest_args: tuple[str, ...] = ()
    """Passed to `python -m pytest` after its own arguments (see `ci_common.job_options`)."""
    env: dict[str, str] = Field(default_factory=lambda: dict[str, str]())
    """Set in the container for pytest, beside `CI=true` and `CI_JOB_ID`."""
    project: str | None = None
    """The project's name as the client gave it (pyproject's, else the directory's)."""
    git: GitInfo | None = None
    engine: str | None = None
    """The engine (its controller's `--engine`) that claimed the job; None while queued."""
    python: str | None = None
    """The Python version (`3.13`) chosen at submit (`ci_common.python_versions`); None when
    no controller had published its versions yet: the controller's default then."""
    extras: tuple[str, ...] | None = None
    """The project's extras to install; None: the automatic choice (`test`, `tests`, `dev`)."""
    groups: tuple[str, ...] | None = None
    """The PEP 735 dependency groups to install; None: the automatic choice."""
    results_cursor: str | None = None
    """The controller's position in the container's results stream (like `log_cursor`)."""
    tests_reported: int = 0
    """Per-test results stored so far (the last one's index)."""
    tests_note: str | None = None
    """Why the results are incomplete, once that is known."""
    files_hash: str | None = None
    content_hash: str | None = None
    """The uploaded files, pytest arguments and Python version, hashed; null until the tests
    start (the Python version comes from inside the container)."""
    rerun_of: JobId | None = None
    """The job whose failures this one runs again."""
    rerun_node_ids: tuple[str, ...] = ()
    session_exitstatus: int | None = None
    """pytest's exit status from our plugin's end record; None until its session ended."""
    artifacts: tuple[str, ...] = ()
    """Glob patterns of files kept beside `junit.xml` after pytest exits."""

    @property
    def success(self) -> bool | None:
        """True or False once completed, None before."""
        if self.conclusion is None:
            return None
        return self.conclusion is JobConclusion.SUCCESS

    @property
    def is_terminal(self) -> bool:
        return self.status is JobStatus.COMPLETED


class LogChunk(_Record):
    """A piece of a job's output; `seq` is per job, strictly increasing from 1, never reused."""

    job_id: JobId
    seq: int
    data: str
    created_at: datetime


class Artifact(_Record):
    """A file kept from a job's container after pytest exited (`junit.xml` always)."""

    job_id: JobId
    path: str
    """Relative to the project root; `junit.xml` is ours."""
    size: int


class EngineStatus(_Record):
    """One Docker engine as its controller last reported it (`GET /engines`)."""

    name: str
    capacity: int
    """Jobs its controller runs at once (`CI_MAX_PARALLEL_JOBS`)."""
    running: int
    """Jobs running on it now."""
    last_seen: datetime
    """Its controller's last heartbeat."""
