"""Per-test results in PostgreSQL (the `TestResultRepository` half).

The semantics are SQLite's (`ci_persistence.test_results`): one transaction takes the next
indexes from the job row (`UPDATE ... RETURNING tests_reported`, whose row lock orders
concurrent appenders), inserts the rows and moves the job's `results_cursor`, so what is stored
and where the controller resumes reading are one fact. A result's message, traceback and
output are stored as UTF-8 `bytea` and read back as text, NUL included (SQLite keeps NUL in
TEXT; PostgreSQL's text refuses it, and a test's output can hold one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ci_common.errors import JobNotFoundError
from ci_common.models import JobId, UserId
from ci_common.test_results import (
    FAILING_OUTCOMES,
    FlakyTest,
    TestCounts,
    TestOutcome,
    TestReport,
    TestResult,
)
from ci_persistence.postgres.database import PostgresDatabase, Record, job_missing_or_moved
from ci_persistence.postgres.ids import as_uuid
from ci_persistence.postgres.notifications import JOBS_CHANNEL
from ci_persistence.uncancellable import uncancellable

_FAILING = [outcome.value for outcome in FAILING_OUTCOMES]
_COLUMNS = "job_id, idx, nodeid, outcome, phase, duration, message, traceback, output, created_at"

# A test is flaky when one content hash saw it pass and fail (an error in a teardown after a
# pass is no verdict on the test's own outcome, so it does not count).
_FLAKY = """
SELECT jobs.project AS project, results.nodeid AS nodeid,
       COUNT(*) FILTER (WHERE results.outcome = 'passed') AS passes,
       COUNT(*) FILTER (WHERE results.outcome = ANY($1::text[])
                        AND results.phase <> 'teardown') AS failures,
       MAX(results.created_at) AS last_seen
FROM jobs JOIN test_results AS results ON results.job_id = jobs.id
WHERE jobs.user_id = $2 AND jobs.content_hash IS NOT NULL {project}
GROUP BY jobs.project, jobs.content_hash, results.nodeid
HAVING COUNT(*) FILTER (WHERE results.outcome = 'passed') > 0
   AND COUNT(*) FILTER (WHERE results.outcome = ANY($1::text[])
                        AND results.phase <> 'teardown') > 0
"""


def _encoded(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _decoded(data: bytes | None) -> str | None:
    return None if data is None else bytes(data).decode()


def result_from_record(row: Record) -> TestResult:
    return TestResult(
        job_id=JobId(str(row["job_id"])),
        index=row["idx"],
        nodeid=row["nodeid"],
        outcome=TestOutcome(row["outcome"]),
        phase=row["phase"],
        duration=row["duration"],
        message=_decoded(row["message"]),
        traceback=_decoded(row["traceback"]),
        output=_decoded(row["output"]),
        created_at=row["created_at"],
    )


class PostgresTestResults:
    """Implements `ci_common.TestResultRepository`; mixed into `PostgresRepository`."""

    _db: PostgresDatabase

    @uncancellable
    async def record_test_results(
        self,
        job_id: JobId,
        reports: Sequence[TestReport],
        *,
        cursor: str | None,
        content_hash: str | None = None,
        session_exitstatus: int | None = None,
        after_index: int | None = None,
    ) -> int:
        key = as_uuid(job_id)
        if key is None:
            raise JobNotFoundError(job_id)
        created = datetime.now(UTC)
        async with self._db.transaction() as conn:
            last = await conn.fetchval(
                "WITH bumped AS ("
                "UPDATE jobs SET tests_reported = tests_reported + $1, "
                "results_cursor = COALESCE($2, results_cursor), "
                "content_hash = COALESCE($3, content_hash), "
                "session_exitstatus = COALESCE($4, session_exitstatus) "
                "WHERE id = $5 AND ($7::integer IS NULL OR tests_reported = $7) "
                "RETURNING tests_reported, id) "
                "SELECT tests_reported, pg_notify($6, id::text) FROM bumped",
                len(reports),
                cursor,
                content_hash,
                session_exitstatus,
                key,
                JOBS_CHANNEL,
                after_index,
            )
            if last is None:
                raise await job_missing_or_moved(conn, key, job_id, what="test results")
            first = int(last) - len(reports) + 1
            if reports:
                await conn.executemany(
                    f"INSERT INTO test_results ({_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    [
                        (
                            key,
                            first + offset,
                            report.nodeid,
                            report.outcome.value,
                            report.phase,
                            report.duration,
                            _encoded(report.message),
                            _encoded(report.traceback),
                            _encoded(report.output),
                            created,
                        )
                        for offset, report in enumerate(reports)
                    ],
                )
        return int(last)

    async def set_files_hash(self, job_id: JobId, files_hash: str) -> None:
        key = as_uuid(job_id)
        if key is not None:
            await self._db.execute("UPDATE jobs SET files_hash = $1 WHERE id = $2", files_hash, key)

    async def set_tests_note(self, job_id: JobId, note: str) -> None:
        key = as_uuid(job_id)
        if key is not None:
            await self._db.execute("UPDATE jobs SET tests_note = $1 WHERE id = $2", note, key)

    async def list_test_results(
        self,
        job_id: JobId,
        *,
        outcomes: Sequence[TestOutcome] = (),
        after_index: int = 0,
        limit: int = 100,
    ) -> list[TestResult]:
        key = as_uuid(job_id)
        if key is None:
            return []
        params: list[object] = [key, after_index, limit]
        where = ""
        if outcomes:
            where = "AND outcome = ANY($4::text[])"
            params.append([outcome.value for outcome in outcomes])
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM test_results WHERE job_id = $1 AND idx > $2 {where} "
            "ORDER BY idx LIMIT $3",
            *params,
        )
        return [result_from_record(row) for row in rows]

    async def test_counts(self, job_ids: Sequence[JobId]) -> dict[JobId, TestCounts]:
        if not job_ids:
            return {}
        named = {str(key): job_id for job_id in job_ids if (key := as_uuid(job_id)) is not None}
        keys = [as_uuid(text) for text in named]
        rows = await self._db.fetch_all(
            "SELECT job_id, outcome, COUNT(*) AS n, SUM(duration) AS seconds FROM test_results "
            "WHERE job_id = ANY($1::uuid[]) GROUP BY job_id, outcome",
            keys,
        )
        notes = await self._db.fetch_all(
            "SELECT id, tests_note FROM jobs WHERE id = ANY($1::uuid[])", keys
        )
        by_job: dict[JobId, dict[str, tuple[int, float]]] = {job_id: {} for job_id in job_ids}
        for row in rows:
            by_job[named[str(row["job_id"])]][row["outcome"]] = (row["n"], row["seconds"] or 0.0)
        note: dict[JobId, str | None] = {named[str(row["id"])]: row["tests_note"] for row in notes}
        return {
            job_id: TestCounts.of(counts, note=note.get(job_id))
            for job_id, counts in by_job.items()
        }

    async def failed_node_ids(self, job_id: JobId) -> list[str]:
        key = as_uuid(job_id)
        if key is None:
            return []
        rows = await self._db.fetch_all(
            "SELECT nodeid, MIN(idx) AS first FROM test_results WHERE job_id = $1 "
            "AND outcome = ANY($2::text[]) GROUP BY nodeid ORDER BY first",
            key,
            _FAILING,
        )
        return [row["nodeid"] for row in rows]

    async def flaky_tests(self, user_id: UserId, *, project: str | None = None) -> list[FlakyTest]:
        owner = as_uuid(user_id)
        if owner is None:
            return []
        params: list[object] = [_FAILING, owner]
        clause = ""
        if project is not None:
            clause = "AND jobs.project = $3"
            params.append(project)
        rows = await self._db.fetch_all(_FLAKY.format(project=clause), *params)
        merged: dict[tuple[str | None, str], FlakyTest] = {}
        for row in rows:
            last_seen: datetime = row["last_seen"]
            key = (row["project"], row["nodeid"])
            seen = merged.get(key)
            merged[key] = FlakyTest(
                project=row["project"],
                nodeid=row["nodeid"],
                passes=row["passes"] + (seen.passes if seen else 0),
                failures=row["failures"] + (seen.failures if seen else 0),
                last_seen=max(last_seen, seen.last_seen) if seen else last_seen,
            )
        return sorted(merged.values(), key=lambda flaky: flaky.last_seen, reverse=True)
