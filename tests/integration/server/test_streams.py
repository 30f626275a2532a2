"""SSE streams: replay, forward-only, exact resumption, status, keep-alive, submit streams,
latency, and followers that leave. Live streams go through a real uvicorn (`live_server`);
streams of completed jobs end on their own and also work through the ASGI transport."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import EventSource, aconnect_sse

from ci_common.models import JobConclusion, JobId
from ci_common.repository import Repository
from ci_server.job_stream import JobStream
from ci_server.log_hub import JobStarted, LogHub

from .conftest import Account, hub_of, project_zip, zip_upload

TIMEOUT = 10.0

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

Event = tuple[str, dict[str, Any]]  # (SSE last event id, parsed data)


async def collect(source: EventSource) -> list[Event]:
    """Every event until the stream ends (which it must, after `complete`)."""
    return await drain(source.aiter_sse())


async def drain(events: AsyncIterator[Any]) -> list[Event]:
    """The rest of a stream already being read with `next_event` (a response's body can be
    iterated only once)."""
    rest: list[Event] = []
    async with asyncio.timeout(TIMEOUT):
        async for sse in events:
            rest.append((sse.id, json.loads(sse.data)))
    return rest


async def next_event(events: AsyncIterator[Any]) -> Event:
    async with asyncio.timeout(TIMEOUT):
        sse = await anext(events)
    return (sse.id, json.loads(sse.data))


def logs(events: list[Event]) -> list[tuple[str, int, str]]:
    return [(i, e["seq"], e["data"]) for i, e in events if e["type"] == "log"]


def opening(status: str, resume_seq: int) -> Event:
    """The event every stream opens with: the job's status, with the stream's starting seq as
    its SSE id (the point a client resumes after if it has seen nothing else)."""
    return (str(resume_seq), {"type": "status", "status": status})


@asynccontextmanager
async def follow(
    base_url: str, account: Account, job_id: str, **kwargs: Any
) -> AsyncGenerator[EventSource]:
    """An open stream; entered means the server has answered with headers (it has decided
    where the stream starts)."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT) as client,
        aconnect_sse(
            client,
            "GET",
            f"/jobs/{job_id}/stream",
            headers={**account.headers, **kwargs.pop("headers", {})},
            **kwargs,
        ) as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        yield source


async def new_job(repo: Repository, account: Account, *, lines: int = 0) -> JobId:
    job = await repo.create_job(user_id=account.user.id, archive=project_zip())
    for n in range(1, lines + 1):
        await repo.append_log(job.id, f"line {n}\n", cursor=None)
    return job.id


async def test_replay_of_a_completed_job_ends_with_complete(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice, lines=3)
    await repo.complete_job(job_id, conclusion=JobConclusion.FAILURE, exit_code=1)

    async with aconnect_sse(
        api, "GET", f"/jobs/{job_id}/stream?from_beginning=true", headers=alice.headers
    ) as source:
        events = await collect(source)

    assert events[0] == opening("completed", 0)
    assert logs(events) == [("1", 1, "line 1\n"), ("2", 2, "line 2\n"), ("3", 3, "line 3\n")]
    assert events[-1][1] == {
        "type": "complete",
        "status": "completed",
        "conclusion": "failure",
        "success": False,
        "exit_code": 1,
        "error": None,
    }
    assert len(events) == 5


async def test_completed_job_without_replay_sends_only_complete(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice, lines=2)
    await repo.complete_job(job_id, conclusion=JobConclusion.ERROR, error="image missing")
    async with aconnect_sse(api, "GET", f"/jobs/{job_id}/stream", headers=alice.headers) as source:
        events = await collect(source)
    assert [e["type"] for _, e in events] == ["status", "complete"]
    assert events[0] == opening("completed", 2)
    assert events[1][1]["error"] == "image missing"


@pytest.mark.parametrize("from_beginning", ["false", "true"])
async def test_last_event_id_resumes_exactly_after_it(
    api: httpx.AsyncClient, repo: Repository, alice: Account, from_beginning: str
) -> None:
    job_id = await new_job(repo, alice, lines=5)
    await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
    async with aconnect_sse(
        api,
        "GET",
        f"/jobs/{job_id}/stream",
        params={"from_beginning": from_beginning},
        headers={**alice.headers, "Last-Event-ID": "2"},
    ) as source:
        events = await collect(source)
    assert events[0] == opening("completed", 2)
    assert [seq for _, seq, _ in logs(events)] == [3, 4, 5]
    assert [e["type"] for _, e in events] == ["status", "log", "log", "log", "complete"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", str(2**64)])
async def test_a_bad_last_event_id_is_400(
    api: httpx.AsyncClient, repo: Repository, alice: Account, value: str
) -> None:
    job_id = await new_job(repo, alice)
    response = await api.get(
        f"/jobs/{job_id}/stream", headers={**alice.headers, "Last-Event-ID": value}
    )
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["detail"]


async def test_live_resume_in_the_middle_then_follow(
    live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice, lines=4)
    await repo.mark_running(job_id, container_id=None)
    async with follow(live_server, alice, job_id, headers={"Last-Event-ID": "2"}) as source:
        await repo.append_log(job_id, "line 5\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        events = await collect(source)
    assert events[0] == opening("running", 2)
    assert [(i, seq) for i, seq, _ in logs(events)] == [("3", 3), ("4", 4), ("5", 5)]
    assert events[-1][1]["conclusion"] == "success"


async def test_default_is_forward_only(live_server: str, repo: Repository, alice: Account) -> None:
    job_id = await new_job(repo, alice, lines=3)
    await repo.mark_running(job_id, container_id=None)
    async with follow(live_server, alice, job_id) as source:
        await repo.append_log(job_id, "new\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        events = await collect(source)
    assert events[0] == opening("running", 3)
    assert logs(events) == [("4", 4, "new\n")]
    assert [e["type"] for _, e in events] == ["status", "log", "complete"]


async def test_from_beginning_replays_then_follows(
    live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice, lines=3)
    await repo.mark_running(job_id, container_id=None)
    async with follow(live_server, alice, job_id, params={"from_beginning": "true"}) as source:
        await repo.append_log(job_id, "line 4\n", cursor=None)
        await repo.append_log(job_id, "line 5\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        events = await collect(source)
    assert events[0] == opening("running", 0)
    assert [seq for _, seq, _ in logs(events)] == [1, 2, 3, 4, 5]


async def test_status_event_when_the_job_starts(
    live_server: str, repo: Repository, alice: Account
) -> None:
    """The stream opens with `queued`; `running` arrives once the job starts, exactly once."""
    job_id = await new_job(repo, alice)
    async with follow(live_server, alice, job_id) as source:
        events = source.aiter_sse()
        assert await next_event(events) == opening("queued", 0)
        await repo.mark_running(job_id, container_id=None)
        assert (await next_event(events))[1] == {"type": "status", "status": "running"}
        await repo.append_log(job_id, "out\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        rest = await drain(events)
    assert rest[0] == ("1", {"type": "log", "seq": 1, "data": "out\n"})
    assert [e["type"] for _, e in rest] == ["log", "complete"]


async def test_a_forward_only_follower_resumes_exactly_from_the_opening_event(
    live_server: str, repo: Repository, alice: Account
) -> None:
    """A follower that lost the connection before its first chunk resumes after the opening
    event's id and misses nothing written while it was away (a forward-only reconnect would
    start after chunk 5)."""
    job_id = await new_job(repo, alice, lines=3)
    await repo.mark_running(job_id, container_id=None)
    async with follow(live_server, alice, job_id) as source:
        last_id, first = await next_event(source.aiter_sse())
    assert (last_id, first) == opening("running", 3)
    await repo.append_log(job_id, "line 4\n", cursor=None)
    await repo.append_log(job_id, "line 5\n", cursor=None)

    async with follow(live_server, alice, job_id, headers={"Last-Event-ID": last_id}) as source:
        events = source.aiter_sse()
        assert await next_event(events) == opening("running", 3)
        assert await next_event(events) == ("4", {"type": "log", "seq": 4, "data": "line 4\n"})
        assert await next_event(events) == ("5", {"type": "log", "seq": 5, "data": "line 5\n"})
        await repo.append_log(job_id, "line 6\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        rest = await drain(events)
    assert rest[0] == ("6", {"type": "log", "seq": 6, "data": "line 6\n"})
    assert [e["type"] for _, e in rest] == ["log", "complete"]
    assert rest[1][1]["conclusion"] == "success"


async def test_idle_stream_gets_keep_alive_comments(
    live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    async with follow(live_server, alice, job_id) as source:
        async with asyncio.timeout(TIMEOUT):
            async for line in source.response.aiter_lines():
                if line.startswith(":"):
                    assert "ping" in line
                    break


async def test_submit_streams_the_whole_job(
    live_server: str, repo: Repository, alice: Account
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=TIMEOUT) as client,
        aconnect_sse(
            client, "POST", "/submit", headers=alice.headers, files=zip_upload(project_zip())
        ) as source,
    ):
        assert source.response.status_code == 200
        [job] = await repo.list_jobs()
        await repo.mark_running(job.id, container_id=None)
        await repo.append_log(job.id, "collected 1 item\n", cursor=None)
        await repo.append_log(job.id, "1 passed\n", cursor=None)
        await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        events = await collect(source)
    assert events[0] == opening("queued", 0)
    assert events[1][1] == {"type": "status", "status": "running"}
    assert [e["type"] for _, e in events] == ["status", "status", "log", "log", "complete"]
    assert [data for _, _, data in logs(events)] == ["collected 1 item\n", "1 passed\n"]


async def test_submit_stream_announces_the_job_id_first(
    live_server: str, repo: Repository, alice: Account
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=TIMEOUT) as client,
        aconnect_sse(
            client,
            "POST",
            "/submit-stream",
            headers=alice.headers,
            files=zip_upload(project_zip()),
        ) as source,
    ):
        events = source.aiter_sse()
        _, first = await next_event(events)
        assert first["type"] == "job_id"
        assert await next_event(events) == opening("queued", 0)
        job_id = JobId(first["job_id"])
        assert (await repo.get_job(job_id)).user_id == alice.user.id
        await repo.append_log(job_id, "early output\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.CANCELLED)
        rest = await drain(events)
    assert rest[0] == ("1", {"type": "log", "seq": 1, "data": "early output\n"})
    assert [e["type"] for _, e in rest] == ["log", "complete"]
    assert rest[1][1]["conclusion"] == "cancelled"


async def test_chunks_reach_followers_within_250_ms(
    live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    await repo.mark_running(job_id, container_id=None)
    latencies: list[float] = []
    async with follow(live_server, alice, job_id) as source:
        events = source.aiter_sse()
        assert await next_event(events) == opening("running", 0)
        for n in range(1, 16):
            started = time.monotonic()
            await repo.append_log(job_id, f"chunk {n}\n", cursor=None)
            assert await next_event(events) == (
                str(n),
                {"type": "log", "seq": n, "data": f"chunk {n}\n"},
            )
            latencies.append(time.monotonic() - started)
    assert statistics.median(latencies) < 0.25, latencies
    assert max(latencies) < 1.0, latencies


async def test_final_chunks_and_complete_in_one_tick_arrive_in_order(
    live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    await repo.mark_running(job_id, container_id=None)
    async with follow(live_server, alice, job_id) as source:
        for n in range(1, 51):
            await repo.append_log(job_id, f"{n}\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.FAILURE, exit_code=1)
        events = await collect(source)
    assert events[0] == opening("running", 0)
    assert [seq for _, seq, _ in logs(events)] == list(range(1, 51))
    assert [e["type"] for _, e in events] == ["status", *["log"] * 50, "complete"]


async def test_cancel_through_the_same_server_ends_the_stream(
    live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    async with follow(live_server, alice, job_id) as source:
        async with httpx.AsyncClient(base_url=live_server) as client:
            cancelled = await client.post(f"/jobs/{job_id}/cancel", headers=alice.headers)
        assert cancelled.status_code == 200
        events = await collect(source)
    assert events[0] == opening("queued", 0)
    assert [data for _, data in events[1:]] == [
        {
            "type": "complete",
            "status": "completed",
            "conclusion": "cancelled",
            "success": False,
            "exit_code": None,
            "error": None,
        }
    ]


async def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_followers_that_leave_are_unsubscribed_at_once(
    app: FastAPI, live_server: str, repo: Repository, alice: Account
) -> None:
    job_id = await new_job(repo, alice)
    hub = hub_of(app)
    async with follow(live_server, alice, job_id), follow(live_server, alice, job_id):
        await wait_for(lambda: hub.followers == 2, "two followers")
        assert hub.followed_jobs == 1
    await wait_for(lambda: hub.followers == 0 and hub.followed_jobs == 0, "followers to leave")


async def test_a_follower_that_falls_behind_catches_up_from_the_database(
    repo: Repository, alice: Account
) -> None:
    """Its queue overflows; it gets a resync and still sends every chunk once, in order."""
    job_id = await new_job(repo, alice)
    job = await repo.get_job(job_id)
    async with LogHub(repo, poll_interval=0.01, queue_limit=2) as hub:
        messages = JobStream(repo=repo, hub=hub, job=job, after_seq=0, announce=False).messages()
        opened = await anext(messages)
        assert opened == b'id: 0\r\ndata: {"type":"status","status":"queued"}\r\n\r\n'
        first = asyncio.ensure_future(anext(messages))  # subscribes, then waits for updates
        await wait_for(lambda: hub.followers == 1, "the follower")
        for n in range(1, 11):
            await repo.append_log(job_id, f"{n}\n", cursor=None)
            hub.poke()
            # One batch per chunk: the third one overflows the queue of two.
            await wait_for(lambda n=n: hub.delivered_seq(job_id) == n, f"chunk {n}")
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        received = [await first]
        async with asyncio.timeout(TIMEOUT):
            received += [message async for message in messages]
    text = b"".join(received).decode()
    seqs = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert seqs == list(range(1, 11))
    assert text.rstrip().endswith('"error":null}')


async def test_long_logs_are_served_whole_in_pages(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    """More chunks than one page of the text endpoint and of the replay."""
    job_id = await new_job(repo, alice)
    count = 2_345
    for n in range(1, count + 1):
        await repo.append_log(job_id, f"{n}\n", cursor=None)
    await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)

    text = await api.get(f"/jobs/{job_id}/logs", headers=alice.headers)
    assert text.text == "".join(f"{n}\n" for n in range(1, count + 1))
    async with aconnect_sse(
        api, "GET", f"/jobs/{job_id}/stream?from_beginning=true", headers=alice.headers
    ) as source:
        events = await collect(source)
    assert [seq for _, seq, _ in logs(events)] == list(range(1, count + 1))
    assert events[-1][1]["type"] == "complete"


async def test_a_job_seen_queued_but_started_per_the_hub_gets_one_running_event(
    repo: Repository, alice: Account
) -> None:
    """The stream's snapshot says queued, but the hub (already following the job for another
    client) saw it start: the stream opens with `queued`, then sends `running` exactly once."""
    job_id = await new_job(repo, alice)
    snapshot = await repo.get_job(job_id)
    async with LogHub(repo, poll_interval=0.01) as hub, hub.follow(snapshot) as earlier:
        await repo.mark_running(job_id, container_id=None)
        hub.poke()
        async with asyncio.timeout(TIMEOUT):
            assert isinstance(await earlier.next(), JobStarted)
        stream = JobStream(repo=repo, hub=hub, job=snapshot, after_seq=0, announce=False)
        messages = stream.messages()
        async with asyncio.timeout(TIMEOUT):
            assert await anext(messages) == (
                b'id: 0\r\ndata: {"type":"status","status":"queued"}\r\n\r\n'
            )
            assert await anext(messages) == b'data: {"type":"status","status":"running"}\r\n\r\n'
        await repo.append_log(job_id, "out\n", cursor=None)
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        hub.poke()
        async with asyncio.timeout(TIMEOUT):
            rest = b"".join([message async for message in messages]).decode()
    assert '"type":"status"' not in rest
    assert rest.startswith('id: 1\r\ndata: {"type":"log","seq":1,"data":"out\\n"}')
    assert '"type":"complete"' in rest
