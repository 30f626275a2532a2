"""Building the SSE response of a job stream, and describing it in the OpenAPI schema."""

from __future__ import annotations

from sse_starlette import EventSourceResponse, ServerSentEvent

from ci_common.api import CompleteEvent, JobIdEvent, LogEvent, StatusEvent, TestEvent
from ci_common.models import Job
from ci_common.repository import JobResultsRepository
from ci_server.job_stream import JobStream
from ci_server.log_hub import LogHub
from ci_server.settings import ServerSettings

_EVENT_SCHEMAS = {
    model.__name__: model.model_json_schema()
    for model in (JobIdEvent, LogEvent, StatusEvent, TestEvent, CompleteEvent)
}

SSE_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": (
            "A `text/event-stream`. Each message's `data:` is one JSON object whose `type` is "
            "`job_id` (first message of /submit-stream only), `log` (`seq`, `data`: a chunk of "
            "output; the message's `id:` is `seq`), `test` (one per-test result as it is stored, "
            "sent as a named `event: test` without an `id:`: `index`, `nodeid`, `outcome`, "
            "`phase`, `duration`, `message`, `traceback`, `output`; a stream from the beginning "
            "replays all of them, others send those stored after they opened), `status` or "
            "`complete` (`status`, "
            "`conclusion`, `success`, `exit_code`, `error`), after which the stream ends. "
            "Every stream opens (after `job_id`, if any) with a `status` event carrying the "
            "job's current status and, as its `id:`, the seq the stream starts after (0 from "
            "the beginning, the job's last seq for forward-only, N for `Last-Event-ID: N`): "
            "send the last `id:` you saw as `Last-Event-ID` to resume exactly, even before the "
            "first log message. A later `status` event (no `id:`) says the job started "
            "running. Comment lines (`: ping`) keep an idle connection alive. Event "
            "schemas: " + ", ".join(_EVENT_SCHEMAS)
        ),
        # Each message, as SSE parsers (and schemathesis) see it; `data` is the JSON above.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string"},
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }
}


class KeepAlive(ServerSentEvent):
    """`: ping` as a bare comment line, without the blank line that ends a message.

    A comment followed by a blank line makes some clients (httpx-sse among them) dispatch an
    empty event carrying the last event id; a lone comment line is ignored by all of them.
    """

    def encode(self) -> bytes:
        return b": ping\r\n"


def job_event_response(
    *,
    repo: JobResultsRepository,
    hub: LogHub,
    settings: ServerSettings,
    job: Job,
    after_seq: int,
    announce: bool = False,
    status_code: int = 200,
) -> EventSourceResponse:
    stream = JobStream(repo=repo, hub=hub, job=job, after_seq=after_seq, announce=announce)
    return EventSourceResponse(
        stream.messages(),
        status_code=status_code,
        ping=settings.sse_ping_interval,
        ping_message_factory=KeepAlive,
    )
