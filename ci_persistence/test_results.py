"""Per-test results in SQLite (the `TestResultRepository` half).

Rows are appended the way log chunks are: one transaction takes the next indexes from the job
row (`tests_reported`), inserts the rows and moves the job's `results_cursor`, so what is
stored and where the controller resumes reading are one fact. Counts are one `GROUP BY` over
the job's rows (an index on `(job_id, outcome)`), so they need no bookkeeping of their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from ci_common.models import JobId, UserId
from ci_common.test_results import (
    FAILING_OUTCOMES,
    FlakyTest,
    TestCounts,
    TestOutcome,
    TestReport,
    TestResult,
)
from ci_persistence.database import SqliteDatabase, from_text, job_missing_or_moved, to_text
from ci_persistence.uncancellable import uncancellable

_FAILING = tuple(outcome.value for outcome in FAILING_OUTCOMES)
_COLUMNS = "job_id, idx, nodeid, outcome, phase, duration, message, traceback, output, created_at"

# A test is flaky when one content hash saw it pass and fail (an error in a teardown after a
# pass is no verdict on the test's own outcome, so it does not count).
_FLAKY = f"""
SELECT jobs.project AS project, results.nodeid AS nodeid,
       SUM(results.outcome = 'passed') AS passes,
       SUM(results.outcome IN ({", ".join("?" for _ in _FAILING)})
           AND results.phase != 'teardown') AS failures,
       MAX(results.created_at) AS last_seen
FROM jobs JOIN test_results AS results ON results.job_id = jobs.id
WHERE jobs.user_id = ? AND jobs.content_hash IS NOT NULL {{project}}
GROUP BY jobs.project, jobs.content_hash, results.nodeid
HAVING passes > 0 AND failures > 0
"""


def result_from_row(row: sqlite3.Row) -> TestResult:
    created_at = from_text(row["created_at"])
    assert created_at is not None
    return TestResult(
        job_id=JobId(row["job_id"]),
        index=row["idx"],
        nodeid=row["nodeid"],
        outcome=TestOutcome(row["outcome"]),
        phase=row["phase"],
        duration=row["duration"],
        message=row["message"],
        traceback=row["traceback"],
        output=row["output"],
        created_at=created_at,
    )


class SqliteTestResults:
    """Implements `ci_common.TestResultRepository`; mixed into `SqliteRepository`."""

    _db: SqliteDatabase

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
        created = to_text(datetime.now(UTC))
        async with self._db.transaction() as conn:
            async with conn.execute(
                "UPDATE jobs SET tests_reported = tests_reported + ?, "
                "results_cursor = COALESCE(?, results_cursor), "
                "content_hash = COALESCE(?, content_hash), "
                "session_exitstatus = COALESCE(?, session_exitstatus) "
                "WHERE id = ? AND coalesce(? = tests_reported, 1) RETURNING tests_reported",
                (len(reports), cursor, content_hash, session_exitstatus, job_id, after_index),
            ) as result:
                row = await result.fetchone()
            if row is None:
                raise await job_missing_or_moved(conn, job_id, what="test results")
            last = int(row[0])
            first = last - len(reports) + 1
            await conn.executemany(
                f"INSERT INTO test_results ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        first + offset,
                        report.nodeid,
                        report.outcome.value,
                        report.phase,
                        report.duration,
                        report.message,
                        report.traceback,
                        report.output,
                        created,
                    )
                    for offset, report in enumerate(reports)
                ],
            )
        return last

    async def set_files_hash(self, job_id: JobId, files_hash: str) -> None:
        await self._db.execute("UPDATE jobs SET files_hash = ? WHERE id = ?", (files_hash, job_id))

    async def set_tests_note(self, job_id: JobId, note: str) -> None:
        await self._db.execute("UPDATE jobs SET tests_note = ? WHERE id = ?", (note, job_id))

    async def list_test_results(
        self,
        job_id: JobId,
        *,
        outcomes: Sequence[TestOutcome] = (),
        after_index: int = 0,
        limit: int = 100,
    ) -> list[TestResult]:
        params: list[object] = [job_id, after_index]
        where = ""
        if outcomes:
            where = f"AND outcome IN ({', '.join('?' for _ in outcomes)})"
            params.extend(outcome.value for outcome in outcomes)
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM test_results WHERE job_id = ? AND idx > ? {where} "
            "ORDER BY idx LIMIT ?",
            [*params, limit],
        )
        return [result_from_row(row) for row in rows]

    async def test_counts(self, job_ids: Sequence[JobId]) -> dict[JobId, TestCounts]:
        if not job_ids:
            return {}
        marks = ", ".join("?" for _ in job_ids)
        rows = await self._db.fetch_all(
            f"SELECT job_id, outcome, COUNT(*) AS n, SUM(duration) AS seconds FROM test_results "
            f"WHERE job_id IN ({marks}) GROUP BY job_id, outcome",
            job_ids,
        )
        notes = await self._db.fetch_all(
            f"SELECT id, tests_note FROM jobs WHERE id IN ({marks})", job_ids
        )
        by_job: dict[str, dict[str, tuple[int, float]]] = {job_id: {} for job_id in job_ids}
        for row in rows:
            by_job[row["job_id"]][row["outcome"]] = (row["n"], row["seconds"] or 0.0)
        note = {row["id"]: row["tests_note"] for row in notes}
        return {
            JobId(job_id): TestCounts.of(counts, note=note.get(job_id))
            for job_id, counts in by_job.items()
        }

    async def failed_node_ids(self, job_id: JobId) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT nodeid, MIN(idx) AS first FROM test_results WHERE job_id = ? "
            f"AND outcome IN ({', '.join('?' for _ in _FAILING)}) GROUP BY nodeid ORDER BY first",
            (job_id, *_FAILING),
        )
        return [row["nodeid"] for row in rows]

    async def flaky_tests(self, user_id: UserId, *, project: str | None = None) -> list[FlakyTest]:
        params: list[object] = [*_FAILING, user_id]
        clause = ""
        if project is not None:
            clause = "AND jobs.project = ?"
            params.append(project)
        rows = await self._db.fetch_all(_FLAKY.format(project=clause), params)
        merged: dict[tuple[str | None, str], FlakyTest] = {}
        for row in rows:
            last_seen = from_text(row["last_seen"])
            assert last_seen is not None
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
