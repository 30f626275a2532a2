"""The per-test results half of the repository contract: appending with a cursor, counts,
pages, failed node ids and flaky tests."""

from __future__ import annotations

import pytest

from ci_common.errors import ConcurrentWriterError
from ci_common.job_options import JobOptions
from ci_common.models import Job
from ci_common.repository import Repository
from ci_common.test_results import TestOutcome, TestReport


def report(nodeid: str, outcome: TestOutcome, phase: str = "call") -> TestReport:
    return TestReport(nodeid=nodeid, outcome=outcome, phase=phase, duration=0.25)


async def new_job(repo: Repository, *, email: str = "a@example.org", project: str = "p") -> Job:
    try:
        user = await repo.get_user_by_email(email)
    except Exception:
        user = await repo.create_user(name=email, email=email)
    return await repo.create_job(
        user_id=user.id, archive=b"PK", options=JobOptions(project=project)
    )


async def test_results_append_in_order_with_the_cursor_and_count(repo: Repository) -> None:
    job = await new_job(repo)
    last = await repo.record_test_results(
        job.id,
        [report("t::a", TestOutcome.PASSED), report("t::b", TestOutcome.FAILED)],
        cursor="10:1",
        content_hash="h1",
    )
    assert last == 2
    last = await repo.record_test_results(
        job.id, [report("t::c", TestOutcome.ERROR, "setup")], cursor="20:1"
    )
    assert last == 3

    stored = await repo.get_job(job.id)
    assert (stored.tests_reported, stored.results_cursor, stored.content_hash) == (3, "20:1", "h1")
    page = await repo.list_test_results(job.id, after_index=1, limit=1)
    assert [(r.index, r.nodeid) for r in page] == [(2, "t::b")]
    failing = await repo.list_test_results(job.id, outcomes=[TestOutcome.ERROR])
    assert [r.nodeid for r in failing] == ["t::c"]
    assert await repo.failed_node_ids(job.id) == ["t::b", "t::c"]
    counts = (await repo.test_counts([job.id]))[job.id]
    assert (counts.total, counts.passed, counts.failed, counts.errors) == (3, 1, 1, 1)
    assert counts.duration == 0.75


async def test_a_job_without_results_counts_zero_and_a_note_is_kept(repo: Repository) -> None:
    job = await new_job(repo)
    await repo.set_tests_note(job.id, "pytest did not finish")
    counts = (await repo.test_counts([job.id]))[job.id]
    assert (counts.total, counts.note) == (0, "pytest did not finish")


async def test_flaky_is_passed_and_failed_on_one_content_hash(repo: Repository) -> None:
    runs = [
        ("h1", TestOutcome.FAILED),
        ("h1", TestOutcome.PASSED),
        ("h2", TestOutcome.FAILED),  # other content: no verdict on flakiness
    ]
    for content_hash, outcome in runs:
        job = await new_job(repo)
        await repo.record_test_results(
            job.id,
            [report("t::wobbly", outcome), report("t::steady", TestOutcome.PASSED)],
            cursor=None,
            content_hash=content_hash,
        )
    # A teardown error after a pass is no failure of the test itself.
    job = await new_job(repo)
    await repo.record_test_results(
        job.id,
        [report("t::steady", TestOutcome.ERROR, "teardown")],
        cursor=None,
        content_hash="h1",
    )
    user = await repo.get_user_by_email("a@example.org")

    flaky = await repo.flaky_tests(user.id)

    assert [(f.project, f.nodeid, f.passes, f.failures) for f in flaky] == [
        ("p", "t::wobbly", 1, 1)
    ]
    assert await repo.flaky_tests(user.id, project="other") == []
    stranger = await repo.create_user(name="b", email="b@example.org")
    assert await repo.flaky_tests(stranger.id) == []


async def test_message_traceback_and_output_come_back_exactly_nul_included(
    repo: Repository,
) -> None:
    job = await new_job(repo)
    odd = "before\x00after ünïcødé \u2603\n"
    await repo.record_test_results(
        job.id,
        [
            TestReport(
                nodeid="t::nul",
                outcome=TestOutcome.FAILED,
                phase="call",
                duration=0.5,
                message=odd,
                traceback=f"tb {odd}",
                output=f"out {odd}",
            ),
            report("t::plain", TestOutcome.PASSED),
        ],
        cursor=None,
    )

    nul, plain = await repo.list_test_results(job.id)

    assert (nul.message, nul.traceback, nul.output) == (odd, f"tb {odd}", f"out {odd}")
    assert (plain.message, plain.traceback, plain.output) == (None, None, None)


async def test_a_rerun_keeps_what_it_reruns_and_a_restart_rereads_results(
    repo: Repository,
) -> None:
    first = await new_job(repo)
    user = await repo.get_user_by_email("a@example.org")
    rerun = await repo.create_job(
        user_id=user.id,
        archive=b"PK",
        options=JobOptions(
            rerun_of=first.id, rerun_node_ids=("t::a", "t::b"), artifacts=("cov.xml",)
        ),
    )
    assert (rerun.rerun_of, rerun.rerun_node_ids, rerun.artifacts) == (
        first.id,
        ("t::a", "t::b"),
        ("cov.xml",),
    )
    assert await repo.get_job(rerun.id) == rerun

    await repo.mark_running(rerun.id, container_id="c1")
    await repo.record_test_results(
        rerun.id, [report("t::a", TestOutcome.PASSED)], cursor="5:1", session_exitstatus=1
    )
    await repo.set_files_hash(rerun.id, "files")
    restarted = await repo.restart_job(rerun.id)

    assert restarted is not None
    assert (restarted.results_cursor, restarted.tests_reported) == (None, 1)
    assert (restarted.files_hash, restarted.session_exitstatus) == ("files", 1)
    assert (await repo.test_counts([rerun.id, first.id]))[first.id].total == 0


async def test_results_appended_after_an_index_another_writer_moved_are_refused(
    repo: Repository,
) -> None:
    job = await new_job(repo)
    await repo.record_test_results(
        job.id, [report("t::a", TestOutcome.PASSED)], cursor="10:1", after_index=0
    )

    with pytest.raises(ConcurrentWriterError):  # a second writer that also saw 0
        await repo.record_test_results(
            job.id, [report("t::a", TestOutcome.PASSED)], cursor="10:1", after_index=0
        )

    assert [r.nodeid for r in await repo.list_test_results(job.id)] == ["t::a"]
    assert (await repo.get_job(job.id)).tests_reported == 1
