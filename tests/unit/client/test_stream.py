"""SSE message parsing and the resume cursor."""

from __future__ import annotations

import pytest

from ci_client.errors import ServerError
from ci_client.events import CompleteEvent, JobIdEvent, LogEvent, StatusEvent
from ci_client.stream import StreamCursor, parse_event
from ci_common.models import JobConclusion, JobStatus


def test_parses_each_event_type() -> None:
    assert parse_event('{"type": "job_id", "job_id": "j"}') == JobIdEvent(job_id="j")
    assert parse_event('{"type": "log", "seq": 3, "data": "x\\n"}') == LogEvent(seq=3, data="x\n")
    assert parse_event('{"type": "status", "status": "running"}') == StatusEvent(
        status=JobStatus.RUNNING
    )
    complete = parse_event(
        '{"type": "complete", "status": "completed", "conclusion": "failure", "success": false,'
        ' "exit_code": 1}'
    )
    assert complete == CompleteEvent(
        status=JobStatus.COMPLETED, conclusion=JobConclusion.FAILURE, success=False, exit_code=1
    )


def test_empty_and_unknown_messages_are_ignored() -> None:
    assert parse_event("") is None
    assert parse_event('{"type": "summary", "passed": 1}') is None


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[1, 2]",
        '{"type": "log", "seq": "x"}',
        '{"type": "log", "seq": true, "data": "x"}',
        '{"type": "complete", "status": "completed", "conclusion": 1}',
        '{"type": "job_id"}',
    ],
)
def test_garbage_is_a_server_error(data: str) -> None:
    with pytest.raises(ServerError):
        parse_event(data)


def test_cursor_drops_repeated_and_old_chunks() -> None:
    cursor = StreamCursor(job_id="j", replay=True)
    assert cursor.accept(LogEvent(seq=1, data="a"))
    assert cursor.accept(LogEvent(seq=2, data="b"))
    assert not cursor.accept(LogEvent(seq=2, data="b"))
    assert not cursor.accept(LogEvent(seq=1, data="a"))
    assert cursor.accept(LogEvent(seq=5, data="c"))
    assert cursor.resume_headers() == {"Last-Event-ID": "5"}
    assert cursor.resume_params() == {}


def test_cursor_drops_repeated_status_and_job_id() -> None:
    cursor = StreamCursor(job_id=None, replay=True)
    assert cursor.accept(JobIdEvent(job_id="j"))
    assert cursor.job_id == "j"
    assert not cursor.accept(JobIdEvent(job_id="j"))
    assert cursor.accept(StatusEvent(status=JobStatus.RUNNING))
    assert not cursor.accept(StatusEvent(status=JobStatus.RUNNING))


def test_resume_before_any_chunk_depends_on_replay() -> None:
    assert StreamCursor(job_id="j", replay=True).resume_params() == {"from_beginning": "true"}
    assert StreamCursor(job_id="j", replay=False).resume_params() == {}
    assert StreamCursor(job_id="j", replay=True).resume_headers() == {}


def test_an_event_id_on_a_status_message_becomes_the_resume_point() -> None:
    cursor = StreamCursor(job_id="j", replay=False)
    assert cursor.accept(StatusEvent(status=JobStatus.RUNNING), event_id=7)
    assert cursor.resume_headers() == {"Last-Event-ID": "7"}
    assert not cursor.accept(LogEvent(seq=7, data="old"))
    assert cursor.accept(LogEvent(seq=8, data="new"), event_id=8)
    assert cursor.accept(
        CompleteEvent(
            status=JobStatus.COMPLETED, conclusion=JobConclusion.SUCCESS, success=True, exit_code=0
        ),
        event_id=3,
    )
    assert cursor.last_seq == 8


def test_the_clients_events_have_the_fields_of_the_servers_models() -> None:
    """The client decodes without pydantic; this keeps its dataclasses in step with the wire
    contract in `ci_common.api`."""
    import dataclasses

    from ci_client import events
    from ci_common import api

    for name in ("JobIdEvent", "LogEvent", "StatusEvent", "CompleteEvent"):
        ours = {field.name for field in dataclasses.fields(getattr(events, name))}
        assert ours == set(getattr(api, name).model_fields), name
        sample = getattr(api, name).model_json_schema()
        assert set(sample.get("required", [])) <= ours | {"type"}, name


def test_a_server_models_json_decodes_to_the_same_values() -> None:
    from ci_common import api

    wire = api.CompleteEvent(
        status=JobStatus.COMPLETED,
        conclusion=JobConclusion.ERROR,
        success=False,
        exit_code=None,
        error="image missing",
    ).model_dump_json()
    assert parse_event(wire) == CompleteEvent(
        status="completed", conclusion="error", success=False, exit_code=None, error="image missing"
    )
