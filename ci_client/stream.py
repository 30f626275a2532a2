"""Reading a job's SSE stream: parsing messages into `ci_common.api` events, and the cursor
that lets a dropped stream resume with no event missing or doubled.

The server numbers log chunks per job (`id: <seq>`), so resuming is a matter of remembering the
last `seq` seen and reconnecting with `Last-Event-ID: <seq>`. Before any log chunk was seen
there is nothing to resume after: a stream that shows the whole job (`ci submit test`,
`ci wait --all`) reconnects with `from_beginning=true`, which is exact because nothing was shown
yet; a forward-only attach reconnects forward-only again (it never promised earlier output),
unless the server gave an event id on an earlier message, which is then the resume point.
(The server opens every stream with a `status` event whose id is the stream's starting seq.)
The cursor also drops anything at or below the last `seq` and repeated status messages, so even
a server that replays a little too much cannot make a line appear twice.

Messages are decoded into `ci_client.events` (plain dataclasses, no pydantic: see there why).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import httpx_sse

from ci_client.errors import ServerError
from ci_client.events import Event, EventShapeError, decode_event


def parse_event(data: str) -> Event | None:
    """The event in one SSE `data:` field; None for an empty message or a `type` this client
    does not know (a newer server may add some; ignoring them keeps old clients working)."""
    if not data.strip():
        return None
    try:
        raw: object = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ServerError(
            f"the server sent a stream message that is not JSON: {data[:200]!r}"
        ) from exc
    if not isinstance(raw, dict):
        raise ServerError(f"the server sent a stream message that is not an object: {data[:200]!r}")
    message = cast("dict[str, object]", raw)
    kind = message.get("type")
    if not isinstance(kind, str):
        return None
    try:
        return decode_event(kind, message)
    except EventShapeError as exc:
        raise ServerError(
            f"the server sent a {kind} message this client cannot read ({exc}); client and "
            "server versions may differ"
        ) from exc


def iter_events(source: httpx_sse.EventSource) -> Iterator[tuple[Event, int | None]]:
    """The events of an open SSE response, in order, each with the stream's last event id
    (the SSE `id:`, a log `seq`) as of that message; keep-alive comments are skipped."""
    try:
        for message in source.iter_sse():
            event = parse_event(message.data)
            if event is not None:
                yield event, _event_id(message.id)
    except httpx_sse.SSEError as exc:
        raise ServerError(f"the server's stream is not server-sent events: {exc}") from exc


def _event_id(raw: str) -> int | None:
    text = raw.strip()
    return int(text) if text.isdigit() else None


class StreamCursor:
    """Where a reader is in one job's stream, and how to ask for the rest after a drop."""

    def __init__(self, *, job_id: str | None, replay: bool) -> None:
        self.job_id = job_id
        self.replay = replay
        self.last_seq: int | None = None
        self._last_status: str | None = None
        self._announced = False

    def accept(self, event: Event, *, event_id: int | None = None) -> bool:
        """Record `event`; False if it was already delivered (drop it).

        An event id on a message other than a log chunk is a resume point too (the server
        may mark where a forward-only stream started), so it is remembered."""
        if event.type != "log" and event_id is not None:
            self.last_seq = max(event_id, self.last_seq or 0)
        if event.type == "job_id":
            self.job_id = event.job_id
            if self._announced:
                return False
            self._announced = True
            return True
        if event.type == "log":
            if self.last_seq is not None and event.seq <= self.last_seq:
                return False
            self.last_seq = event.seq
            return True
        if event.type == "status":
            if event.status == self._last_status:
                return False
            self._last_status = event.status
            return True
        return True

    def resume_params(self) -> dict[str, str]:
        """Query parameters of the reconnecting `GET /jobs/{id}/stream`."""
        if self.last_seq is None and self.replay:
            return {"from_beginning": "true"}
        return {}

    def resume_headers(self) -> dict[str, str]:
        """Headers of the reconnecting request: `Last-Event-ID` once a chunk was seen."""
        if self.last_seq is None:
            return {}
        return {"Last-Event-ID": str(self.last_seq)}
