"""The wire contract between the server and its clients: job JSON and SSE messages.

Both `ci_server` (which produces them) and `ci_client` (which consumes them) import these, so
the contract in DESIGN.md lives in exactly one place. Storage records (`ci_common.models`) are
mapped to these by `JobView.from_job`; internal fields never go over the wire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ci_common.models import EngineStatus, GitInfo, Job, JobConclusion, JobStatus
from ci_common.test_results import FlakyTest, TestCounts, TestOutcome, TestResult


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class TestCountsView(_Wire):
    """A job's per-test results so far, by outcome (current while it runs)."""

    __test__ = False

    total: int = Field(default=0, description="results reported")
    passed: int = Field(default=0, description="tests that passed")
    failed: int = Field(default=0, description="tests that failed")
    errors: int = Field(
        default=0, description="errors: in a fixture's setup or teardown, or collecting a file"
    )
    skipped: int = Field(default=0, description="tests skipped")
    xfailed: int = Field(default=0, description="expected failures that failed")
    xpassed: int = Field(default=0, description="expected failures that passed")
    duration: float = Field(default=0.0, description="seconds the reported tests took")
    note: str | None = Field(
        default=None,
        description="why the results are not a whole session's (pytest crashed, was killed, "
        "or stopped after collection errors); null when they are",
    )

    @classmethod
    def from_counts(cls, counts: TestCounts) -> TestCountsView:
        return cls.model_validate(counts.model_dump())


class TestResultView(_Wire):
    """One test's result, as `GET /jobs/{id}/tests` lists it and a `test` event carries it."""

    __test__ = False

    index: int = Field(description="its number in the job, from 1, in the order reported")
    nodeid: str = Field(description="pytest's node id (`path::Class::test[param]`)")
    outcome: TestOutcome = Field(description="passed, failed, error, skipped, xfailed, xpassed")
    phase: str = Field(description="where the outcome was decided: setup, call, teardown, collect")
    duration: float = Field(description="seconds (setup and call)")
    message: str | None = Field(
        default=None, description="one line: the failure, or why it was skipped or xfailed"
    )
    traceback: str | None = Field(default=None, description="pytest's traceback, cut to 4000 chars")
    output: str | None = Field(
        default=None, description="captured stdout, stderr and logging, cut to 4000 chars"
    )

    @classmethod
    def from_result(cls, result: TestResult) -> TestResultView:
        return cls.model_validate(result.model_dump())


class TestResultsPage(_Wire):
    """`GET /jobs/{id}/tests`: one page of results, oldest first."""

    __test__ = False

    results: list[TestResultView] = Field(description="results after `after`, in order")
    next_after: int | None = Field(
        description="pass as `after` for the next page; null when this was the last"
    )


class FlakyTestView(_Wire):
    """A test that passed and failed on the same content (files, pytest args, Python)."""

    project: str | None = Field(description="the project's name")
    nodeid: str = Field(description="pytest's node id")
    passes: int = Field(description="runs that passed")
    failures: int = Field(description="runs that failed or errored")
    last_seen: datetime = Field(description="its latest result (UTC)")

    @classmethod
    def from_flaky(cls, flaky: FlakyTest) -> FlakyTestView:
        return cls.model_validate(flaky.model_dump())


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
    python: str | None = Field(
        default=None,
        description="the Python version it runs on (`3.13`): asked for, else the newest "
        "satisfying the project's requires-python, else the default; see GET /runtimes",
    )
    engine: str | None = Field(
        default=None,
        description="the Docker engine (its controller's --engine) that runs or ran the job; "
        "null while queued",
    )
    extras: list[str] | None = Field(
        default=None,
        description="the project's extras installed; null: the automatic choice (each of "
        "test, tests, dev the project has)",
    )
    groups: list[str] | None = Field(
        default=None,
        description="the PEP 735 dependency groups installed; null: the automatic choice",
    )
    tests: TestCountsView = Field(
        default_factory=TestCountsView,
        description="per-test results so far by outcome, current while the job runs",
    )
    content_hash: str | None = Field(
        default=None,
        description="hash of the uploaded files, pytest arguments and Python version (set "
        "when the tests start); a test that passed and failed on one hash is flaky",
    )
    rerun_of: str | None = Field(
        default=None, description="the job whose failed tests this one ran again"
    )
    artifacts: list[str] = Field(
        default_factory=lambda: list[str](),
        description="glob patterns of files kept after pytest exits (beside junit.xml)",
    )

    @classmethod
    def from_job(cls, job: Job, tests: TestCounts | None = None) -> JobView:
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
            python=job.python,
            engine=job.engine,
            extras=None if job.extras is None else list(job.extras),
            groups=None if job.groups is None else list(job.groups),
            tests=TestCountsView.from_counts(tests) if tests else TestCountsView(),
            content_hash=job.content_hash,
            rerun_of=job.rerun_of,
            artifacts=list(job.artifacts),
        )


class RuntimeView(_Wire):
    """One Python version `GET /runtimes` lists."""

    version: str = Field(description="what a submit's `python` field asks for: `3.13`")
    python: str = Field(description="the exact Python in its image: `3.13.5`")
    image: str = Field(description="the job image that has it")
    default: bool = Field(description="what a job gets when neither it nor its project says")


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


class TestEvent(TestResultView):
    """One test's result as it is stored (also sent as SSE `event: test`, so followers that
    only handle unnamed messages never see it). It carries no `id:`: `Last-Event-ID` stays a
    log seq; after a resume a client may see a result again, and `index` tells it so."""

    type: Literal["test"] = Field(default="test", description="message kind")


class CompleteEvent(_Wire):
    """The last message of every stream."""

    type: Literal["complete"] = Field(default="complete", description="message kind")
    status: JobStatus = Field(description="always `completed`")
    conclusion: JobConclusion | None = Field(description="how the job ended")
    success: bool | None = Field(description="conclusion == success")
    exit_code: int | None = Field(description="pytest's exit code; null if pytest never ran")
    error: str | None = Field(default=None, description="why the job could not run")


StreamEvent = Annotated[
    JobIdEvent | LogEvent | StatusEvent | TestEvent | CompleteEvent, Field(discriminator="type")
]


class EngineView(_Wire):
    """One Docker engine `GET /engines` lists (admins only)."""

    name: str = Field(description="the engine's name, its controller's --engine")
    capacity: int = Field(description="jobs its controller runs at once")
    running: int = Field(description="jobs running on it now")
    last_seen: datetime = Field(description="its controller's last heartbeat")
    alive: bool = Field(description="seen within the grace period (CI_ENGINE_LOST_AFTER)")

    @classmethod
    def from_status(cls, engine: EngineStatus, *, alive: bool) -> EngineView:
        return cls(
            name=engine.name,
            capacity=engine.capacity,
            running=engine.running,
            last_seen=engine.last_seen,
            alive=alive,
        )
