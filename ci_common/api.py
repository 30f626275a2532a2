"""The wire contract between the server and its clients: job JSON and SSE messages.

Both `ci_server` (which produces them) and `ci_client` (which consumes them) import these, so
the contract in DESIGN.md lives in exactly one place. Storage records (`ci_common.models`) are
mapped to these by `JobView.from_job`; internal fields never go over the wire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ci_common.models import GitInfo, Job, JobConclusion, JobStatus


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class JobView(_Wire):
    """A job as `GET /jobs/{id}` returns it."""

    id: str = Field(description="the job's UUID4")
    status: JobStatus = Field(description="queued → running → completed")
    conclusion: JobConclusion | None = Field(description="how it ended; null until completed")
    success: bool | None = Field(description="conclusion == success; null until completed")
    exit_code: int | None = Field(description="pytest's exit code; null if pytest never ran")
    error: str | None = Field(description="why the job could not run (conclusion error)")
    cancel_requested: bool = Field(description="a cancel was requested")
    created_at: datetime = Field(description="when it was submitted (UTC)")
    started_at: datetime | None = Field(description="when its container started (UTC)")
    finished_at: datetime | None = Field(description="when it completed (UTC)")
    attempts: int = Field(
        default=0,
        description="how often it was started: above 1 when a start was cut short before its "
        "tests began (the controller stopped) and the job was started again",
    )
    project: str | None = Field(
        default=None,
        description="the project's name: pyproject's [project].name, else the "
        "uploaded directory's name (as the client sent it)",
    )
    git: GitInfo | None = Field(
        default=None,
        description="`{commit, branch, dirty}` of the uploaded git checkout; null outside git",
    )
    pytest_args: list[str] = Field(
        default_factory=lambda: list[str](),
        description="arguments given to `python -m pytest` after its own",
    )
    env: dict[str, str] = Field(
        default_factory=lambda: dict[str, str](),
        description="environment set for pytest (beside CI=true and CI_JOB_ID)",
    )
    artifacts: list[str] = Field(
        default_factory=lambda: list[str](),
        description="glob patterns of files kept after pytest exits (beside junit.xml)",
    )

    @classmethod
    def from_job(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            status=job.status,
            conclusion=job.conclusion,
            success=job.success,
            exit_code=job.exit_code,
            error=job.error,
            cancel_requested=job.cancel_requested,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            attempts=job.attempts,
            project=job.project,
            git=job.git,
            pytest_args=list(job.pytest_args),
            env=dict(job.env),
            artifacts=list(job.artifacts),
        )


class ArtifactView(_Wire):
    """A file kept from a job's container, as `GET /jobs/{id}/artifacts` lists it."""

    path: str = Field(description="relative to the project root; `junit.xml` is pytest's report")
    size: int = Field(description="bytes")


class SubmitAccepted(_Wire):
    """The 202 body of `POST /submit-async`."""

    job_id: str = Field(description="the new job's UUID4")
    status: JobStatus = Field(description="always `queued` for a new job")


class Limits(_Wire):
    """`GET /limits`: what this server accepts, so a client checks before it uploads."""

    max_upload_bytes: int = Field(description="largest archive accepted (CI_MAX_UPLOAD_MB)")
    max_unpacked_bytes: int = Field(description="largest total unpacked size (CI_MAX_UNPACKED_MB)")
    max_upload_entries: int = Field(description="most entries in one archive")
    max_pytest_args: int = Field(description="most pytest arguments")
    max_pytest_arg_bytes: int = Field(description="longest pytest argument, UTF-8 bytes")
    max_pytest_args_bytes: int = Field(description="all pytest arguments together, UTF-8 bytes")
    max_env_vars: int = Field(description="most environment variables")
    max_env_value_bytes: int = Field(description="longest environment value, UTF-8 bytes")
    max_env_bytes: int = Field(description="all names and values together, UTF-8 bytes")
    env_name_pattern: str = Field(description="what an environment variable's name must match")
    reserved_env_names: list[str] = Field(description="names the service sets itself")


class ErrorBody(_Wire):
    """Every 4xx body: what was wrong and what to do."""

    detail: str = Field(description="what was wrong with the request and what to do about it")


class JobIdEvent(_Wire):
    """First message of `POST /submit-stream`."""

    type: Literal["job_id"] = Field(default="job_id", description="message kind")
    job_id: str = Field(description="the UUID4 of the job just submitted")


class LogEvent(_Wire):
    """A chunk of output; its SSE `id:` is `seq`, so `Last-Event-ID` resumes after it."""

    type: Literal["log"] = Field(default="log", description="message kind")
    seq: int = Field(description="the chunk's per-job sequence number (also the SSE `id:`)")
    data: str = Field(description="a chunk of the job's output, as text")


class StatusEvent(_Wire):
    """The job changed status (queued → running)."""

    type: Literal["status"] = Field(default="status", description="message kind")
    status: JobStatus = Field(description="the job's new status")


class CompleteEvent(_Wire):
    """The last message of every stream."""

    type: Literal["complete"] = Field(default="complete", description="message kind")
    status: JobStatus = Field(description="always `completed`")
    conclusion: JobConclusion | None = Field(description="how the job ended")
    success: bool | None = Field(description="conclusion == success")
    exit_code: int | None = Field(description="pytest's exit code; null if pytest never ran")
    error: str | None = Field(default=None, description="why the job could not run")


StreamEvent = Annotated[
    JobIdEvent | LogEvent | StatusEvent | CompleteEvent, Field(discriminator="type")
]
