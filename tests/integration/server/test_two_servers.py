"""Two real server processes on one database: either one answers for any job, and a stream
through one sees what was submitted through the other and what the controller writes."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from httpx_sse import aconnect_sse

from ci_common.models import JobConclusion, JobId
from ci_common.repository import Repository

from .conftest import Account, StartServerProcess, project_zip, zip_upload

TIMEOUT = 10.0

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def test_two_processes_serve_the_same_jobs_and_streams(
    server_process: StartServerProcess, repo: Repository, alice: Account, bob: Account
) -> None:
    first, second = server_process(), server_process()
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=TIMEOUT) as one,
        httpx.AsyncClient(base_url=second.url, timeout=TIMEOUT) as two,
    ):
        submitted = await one.post(
            "/submit-async", headers=alice.headers, files=zip_upload(project_zip())
        )
        assert submitted.status_code == 202
        job_id = JobId(submitted.json()["job_id"])

        seen_by_two = await two.get(f"/jobs/{job_id}", headers=alice.headers)
        assert seen_by_two.status_code == 200
        assert seen_by_two.json()["status"] == "queued"
        assert (await two.get(f"/jobs/{job_id}", headers=bob.headers)).status_code == 404

        async with (
            aconnect_sse(one, "GET", f"/jobs/{job_id}/stream", headers=alice.headers) as via_one,
            aconnect_sse(
                two,
                "GET",
                f"/jobs/{job_id}/stream",
                params={"from_beginning": "true"},
                headers=alice.headers,
            ) as via_two,
        ):
            await repo.mark_running(job_id, container_id=None)
            for n in range(1, 4):
                await repo.append_log(job_id, f"line {n}\n", cursor=None)
            await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
            async with asyncio.timeout(TIMEOUT):
                events_one = [(e.id, json.loads(e.data)) async for e in via_one.aiter_sse()]
                events_two = [(e.id, json.loads(e.data)) async for e in via_two.aiter_sse()]

        # Forward-only and from-the-beginning start at the same seq: the log was empty.
        assert events_one == events_two
        assert events_one[0] == ("0", {"type": "status", "status": "queued"})
        assert events_one[1][1] == {"type": "status", "status": "running"}
        assert [e["type"] for _, e in events_one] == [
            *("status", "status"),
            *("log", "log", "log"),
            "complete",
        ]
        assert [(i, e["seq"]) for i, e in events_one if e["type"] == "log"] == [
            ("1", 1),
            ("2", 2),
            ("3", 3),
        ]

        # A cancel through one process is visible through the other.
        other = await one.post(
            "/submit-async", headers=alice.headers, files=zip_upload(project_zip())
        )
        other_id = other.json()["job_id"]
        assert (await two.post(f"/jobs/{other_id}/cancel", headers=alice.headers)).json()[
            "conclusion"
        ] == "cancelled"
        listed = (await one.get("/jobs", headers=alice.headers)).json()
        assert [(j["id"], j["conclusion"]) for j in listed] == [
            (other_id, "cancelled"),
            (job_id, "success"),
        ]
        logs = await two.get(f"/jobs/{job_id}/logs", headers=alice.headers)
        assert logs.text == "line 1\nline 2\nline 3\n"


async def test_a_stream_follows_a_cancel_made_through_another_process(
    server_process: StartServerProcess, repo: Repository, alice: Account
) -> None:
    first, second = server_process(), server_process()
    job = await repo.create_job(user_id=alice.user.id, archive=project_zip())
    await repo.mark_running(job.id, container_id=None)
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=TIMEOUT) as one,
        httpx.AsyncClient(base_url=second.url, timeout=TIMEOUT) as two,
        aconnect_sse(one, "GET", f"/jobs/{job.id}/stream", headers=alice.headers) as stream,
    ):
        flagged = await two.post(f"/jobs/{job.id}/cancel", headers=alice.headers)
        assert flagged.json()["cancel_requested"] is True
        # The controller notices the flag, stops the container and records the outcome.
        assert (await repo.get_job(job.id)).cancel_requested
        await repo.complete_job(job.id, conclusion=JobConclusion.CANCELLED, exit_code=137)
        async with asyncio.timeout(TIMEOUT):
            events = [(e.id, json.loads(e.data)) async for e in stream.aiter_sse()]
    assert events[0] == ("0", {"type": "status", "status": "running"})
    assert [data for _, data in events[1:]] == [
        {
            "type": "complete",
            "status": "completed",
            "conclusion": "cancelled",
            "success": False,
            "exit_code": 137,
            "error": None,
        }
    ]
