"""The controller's side of per-test results, against the in-memory runtime: records of the
results channel become rows with their cursor, a line cut over records is put back together,
an adopted job repeats and loses nothing, and a job whose session did not finish says so."""

from __future__ import annotations

import json

from controller_world import World
from fake_runtime import FakeContainer

from ci_common.test_results import TestOutcome, TestReport
from ci_controller.job_results import JobResults
from ci_controller.log_cursor import LogPosition
from ci_controller.result_records import RecordReader, SessionStarted
from ci_controller.runtime import ContainerState, LogFrame

SESSION = {"kind": "session", "python": "3.11.2", "pytest": "9.2.0"}


def result(nodeid: str, outcome: str, **extra: object) -> dict[str, object]:
    return {"kind": "test", "nodeid": nodeid, "outcome": outcome, "phase": "call", **extra}


def frame(data: bytes, stamp: int) -> LogFrame:
    return LogFrame(position=LogPosition(timestamp_ns=stamp, count=1), data=data)


def test_a_line_cut_in_two_frames_is_one_record_with_the_second_frames_position() -> None:
    reader = RecordReader("job")
    line = b'{"kind": "test", "nodeid": "t.py::a", "outcome": "passed", "phase": "call"}\n'

    assert reader.feed(frame(line[:30], 1)) == ([], None)
    records, position = reader.feed(frame(line[30:], 2))

    assert records == [
        TestReport(nodeid="t.py::a", outcome=TestOutcome.PASSED, phase="call", duration=0.0)
    ]
    assert position == LogPosition(timestamp_ns=2, count=1)


def test_lines_that_are_not_records_are_skipped() -> None:
    reader = RecordReader("job")
    records, _ = reader.feed(frame(b"not json\n", 1))
    assert records == []
    records, _ = reader.feed(frame(b'{"kind": "nonsense"}\n', 2))
    assert records == []
    records, _ = reader.feed(frame(b'{"kind": "session", "python": "3.11.2", "pytest": "9"}\n', 3))
    assert records == [SessionStarted(python="3.11.2", pytest="9")]


async def test_results_become_rows_and_the_job_gets_its_content_hash(world: World) -> None:
    def runs(container: FakeContainer) -> None:
        container.emit_result(SESSION)
        container.emit_result(result("t.py::a", "passed", duration=0.5))
        container.emit_result(result("t.py::b", "failed", message="boom", traceback="tb"))
        container.emit_result({"kind": "end", "exitstatus": 1})
        container.emit(b"1 failed, 1 passed\n")
        container.exit(1)

    world.runtime.on_start = runs
    job = await world.submit()
    await world.reconciled()

    rows = await world.repo.list_test_results(job.id)
    assert [(r.index, r.nodeid, r.outcome) for r in rows] == [
        (1, "t.py::a", TestOutcome.PASSED),
        (2, "t.py::b", TestOutcome.FAILED),
    ]
    assert rows[1].message == "boom"
    done = await world.job(job)
    assert done.tests_reported == 2 and done.results_cursor is not None
    assert done.content_hash is not None and done.files_hash is not None
    counts = (await world.repo.test_counts([job.id]))[job.id]
    assert (counts.total, counts.passed, counts.failed, counts.note) == (2, 1, 1, None)
    assert "[ci] test results" not in await world.log_text(job)


async def test_a_job_killed_mid_session_keeps_its_results_and_says_why(world: World) -> None:
    def killed(container: FakeContainer) -> None:
        container.emit_result(SESSION)
        container.emit_result(result("t.py::a", "passed"))
        container.exit(137)

    world.runtime.on_start = killed
    job = await world.submit()
    await world.reconciled()

    counts = (await world.repo.test_counts([job.id]))[job.id]
    assert counts.total == 1
    assert counts.note is not None and "did not finish its session" in counts.note
    assert "exit code 137" in counts.note
    assert f"[ci] test results: {counts.note}" in await world.log_text(job)


async def test_the_same_files_on_the_same_python_hash_the_same(world: World) -> None:
    def runs(container: FakeContainer) -> None:
        container.emit_result(SESSION)
        container.emit_result({"kind": "end", "exitstatus": 5})
        container.exit(5)

    world.runtime.on_start = runs
    first, second = await world.submit(), await world.submit()
    other = await world.submit({"test_other.py": "def test_x():\n    pass\n"})
    await world.reconciled()

    hashes = [(await world.job(job)).content_hash for job in (first, second, other)]
    assert hashes[0] == hashes[1] != hashes[2]


async def test_an_adopted_job_repeats_and_loses_no_result_nor_line_whichever_cursor_is_behind(
    world: World,
) -> None:
    # Results and output share the container's one stream, each stored with its own cursor:
    # here the stored log is ahead of the stored results, and then the results ahead of the log.
    job = await world.submit()
    assert await world.server.mark_running(job.id, container_id=None)
    container = world.runtime.add_container(job_id=job.id, state=ContainerState.RUNNING)
    await world.server.set_container(job.id, container.id)
    container.emit_result(SESSION)
    stored_a = container.emit_result(result("t.py::a", "passed"))
    await world.server.record_test_results(
        job.id,
        [TestReport(nodeid="t.py::a", outcome=TestOutcome.PASSED, phase="call")],
        cursor=stored_a.position.encode(),
    )
    container.emit_result(result("t.py::b", "failed", message="boom"))
    line = container.emit(b"line 1\n")
    await world.server.append_log(job.id, "line 1\n", cursor=line.position.encode())
    container.emit_result(result("t.py::c", "passed"))
    container.emit(b"line 2\n")

    controller = world.controller()
    await controller.reconcile()
    container.emit_result({"kind": "end", "exitstatus": 1})
    container.exit(1)
    await controller.wait_idle()

    rows = await world.repo.list_test_results(job.id)
    assert [(r.index, r.nodeid) for r in rows] == [(1, "t.py::a"), (2, "t.py::b"), (3, "t.py::c")]
    assert await world.test_output(job) == "line 1\nline 2\n"
    assert (await world.repo.test_counts([job.id]))[job.id].note is None


async def test_a_record_printed_by_a_test_is_output_not_a_result(world: World) -> None:
    def prints(container: FakeContainer) -> None:
        container.emit_result(SESSION)
        container.emit(b'{"kind": "test", "nodeid": "forged", "outcome": "passed"}\n')
        container.emit_result({"kind": "end", "exitstatus": 0})
        container.exit(0)

    world.runtime.on_start = prints
    job = await world.submit()
    await world.reconciled()

    assert await world.repo.list_test_results(job.id) == []
    assert '"nodeid": "forged"' in await world.test_output(job)


async def test_the_end_of_the_session_is_stored_with_the_results_it_came_with(
    world: World,
) -> None:
    # The last result and the end record often share one record of PID 1: both are stored
    # with the cursor past them, so a controller that dies right after neither stores that
    # result again nor forgets that the session ended.
    job = await world.submit()
    results = JobResults(repo=world.repo, job=job)
    last_two = (
        json.dumps(result("t.py::b", "failed"))
        + "\n"
        + json.dumps({"kind": "end", "exitstatus": 1})
    )
    await results.add_frame(frame(json.dumps(SESSION).encode() + b"\n", 1))
    await results.add_frame(frame(json.dumps(result("t.py::a", "passed")).encode() + b"\n", 2))
    await results.add_frame(frame(last_two.encode() + b"\n", 3))
    await results.close()

    stored = await world.job(job)
    assert (stored.tests_reported, stored.session_exitstatus) == (2, 1)
    assert stored.results_cursor == LogPosition(timestamp_ns=3, count=1).encode()
    adopted = JobResults(repo=world.repo, job=stored)
    assert await adopted.finish(exit_code=1, stopped=None) is None
    assert len(await world.repo.list_test_results(job.id)) == 2
