"""Logs served in pages of bounded bytes: every chunk exactly once and in order whatever the
chunks' sizes, resumed exactly by `Last-Event-ID` on and around page boundaries, and no read
of the database that returns more than a page."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from ci_common.models import JobConclusion, JobId, LogChunk
from ci_persistence import SqliteRepository
from ci_persistence.logs import SqliteLogs
from ci_server.log_pages import LOG_PAGE_BYTES

from .conftest import Account, project_zip

TIMEOUT = 10.0
PAGE = LOG_PAGE_BYTES


def varied_texts() -> list[str]:
    """Chunks of every size around a page: short lines, exactly a page, one page in characters
    but two in bytes (it must come alone), multi-byte runs that straddle page ends, and the
    characters JSON has to escape."""
    texts = [f"line {n}\n" for n in range(1, 300)]
    texts.append("x" * (PAGE - 1) + "\n")
    texts.append("é" * PAGE + "\n")
    texts += ["ü" * 1500 + f" {n}\n" for n in range(60)]
    texts.append('\x1b[31mred\x1b[0m "quoted" \\ back\ttab\r\n')
    texts += [f"{n}\n" * 700 for n in range(40)]
    return texts


@pytest.fixture
async def long_log(repo: SqliteRepository, alice: Account) -> tuple[JobId, list[str]]:
    """A completed job whose log is `varied_texts()`, one chunk each (seq = index + 1)."""
    texts = varied_texts()
    job = await repo.create_job(user_id=alice.user.id, archive=project_zip())
    for text in texts:
        await repo.append_log(job.id, text, cursor=None)
    await repo.complete_job(job.id, conclusion=JobConclusion.FAILURE, exit_code=1)
    return job.id, texts


@pytest.fixture
def page_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, int, int]]:
    """Every `read_logs` the server makes: (max_bytes, chunks returned, their bytes)."""
    reads: list[tuple[int | None, int, int]] = []
    original = SqliteLogs.read_logs

    async def spy(self: SqliteLogs, job_id: JobId, **kwargs: Any) -> list[LogChunk]:
        chunks = await original(self, job_id, **kwargs)
        size = sum(len(chunk.data.encode()) for chunk in chunks)
        reads.append((kwargs.get("max_bytes"), len(chunks), size))
        return chunks

    monkeypatch.setattr(SqliteLogs, "read_logs", spy)
    return reads


def assert_pages_bounded(reads: list[tuple[int | None, int, int]]) -> None:
    assert reads, "the server read no pages"
    for max_bytes, count, size in reads:
        assert max_bytes == PAGE
        assert size <= PAGE or count == 1, (count, size)


async def replay(
    api: httpx.AsyncClient, account: Account, job_id: JobId, **headers: str
) -> list[tuple[str, dict[str, Any]]]:
    async with (
        asyncio.timeout(TIMEOUT),
        aconnect_sse(
            api,
            "GET",
            f"/jobs/{job_id}/stream",
            params={"from_beginning": "true"},
            headers={**account.headers, **headers},
        ) as source,
    ):
        return [(sse.id, json.loads(sse.data)) async for sse in source.aiter_sse()]


async def test_the_text_log_is_whole_and_read_a_page_at_a_time(
    api: httpx.AsyncClient,
    long_log: tuple[JobId, list[str]],
    alice: Account,
    page_reads: list[tuple[int | None, int, int]],
) -> None:
    job_id, texts = long_log
    response = await api.get(f"/jobs/{job_id}/logs", headers=alice.headers)
    assert response.status_code == 200
    assert response.text == "".join(texts)
    assert_pages_bounded(page_reads)
    assert len(page_reads) > 5


async def test_a_replay_sends_every_chunk_once_in_order(
    api: httpx.AsyncClient,
    long_log: tuple[JobId, list[str]],
    alice: Account,
    page_reads: list[tuple[int | None, int, int]],
) -> None:
    job_id, texts = long_log
    events = await replay(api, alice, job_id)
    assert events[0] == ("0", {"type": "status", "status": "completed"})
    assert [(i, e["seq"], e["data"]) for i, e in events[1:-1]] == [
        (str(seq), seq, text) for seq, text in enumerate(texts, start=1)
    ]
    assert events[-1][1]["type"] == "complete"
    assert_pages_bounded(page_reads)


async def test_last_event_id_resumes_exactly_on_and_around_page_boundaries(
    api: httpx.AsyncClient,
    repo: SqliteRepository,
    long_log: tuple[JobId, list[str]],
    alice: Account,
) -> None:
    job_id, texts = long_log
    boundaries: list[int] = []
    after = 0
    while page := await repo.read_logs(job_id, after_seq=after, max_bytes=PAGE):
        after = page[-1].seq
        boundaries.append(after)
    assert len(boundaries) > 5
    for boundary in boundaries[:3] + boundaries[-3:]:
        for resume in (boundary - 1, boundary, boundary + 1):
            events = await replay(api, alice, job_id, **{"Last-Event-ID": str(resume)})
            assert events[0][0] == str(resume)
            seqs = [e["seq"] for _, e in events if e["type"] == "log"]
            assert seqs == list(range(resume + 1, len(texts) + 1))
            assert events[-1][1]["type"] == "complete"


async def test_a_burst_of_many_pages_reaches_a_live_follower_whole(
    live_server: str, repo: SqliteRepository, alice: Account
) -> None:
    """More output between two looks of the hub than a page, and than a follower's queue
    holds: the hub reads it in pages, the follower gets each chunk once, in order."""
    job = await repo.create_job(user_id=alice.user.id, archive=project_zip())
    await repo.mark_running(job.id, container_id=None)
    texts = [f"{n:05d} " + "y" * 4000 + "\n" for n in range(1, 601)]  # about 2.3 MiB
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=TIMEOUT) as client,
        aconnect_sse(client, "GET", f"/jobs/{job.id}/stream", headers=alice.headers) as source,
    ):
        events = source.aiter_sse()
        async with asyncio.timeout(TIMEOUT):
            first = await anext(events)
        assert (first.id, json.loads(first.data)["status"]) == ("0", "running")
        for text in texts:
            await repo.append_log(job.id, text, cursor=None)
        await repo.complete_job(job.id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        async with asyncio.timeout(3 * TIMEOUT):
            rest = [json.loads(sse.data) async for sse in events]
    assert [(e["seq"], e["data"]) for e in rest if e["type"] == "log"] == list(
        enumerate(texts, start=1)
    )
    assert rest[-1]["type"] == "complete"
