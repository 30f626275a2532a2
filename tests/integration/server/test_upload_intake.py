"""Uploads are received only from a known caller, only while a slot is free, only for so long:
a refused upload's body is not read at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from ci_persistence import SqliteRepository
from ci_server import ServerSettings
from ci_server.dependencies import ServerRuntime
from ci_server.upload_intake import RETRY_AFTER_SECONDS

from .conftest import Account, project_zip

ENDPOINTS = ["/submit", "/submit-stream", "/submit-async"]
BOUNDARY = "b0undary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
UPLOAD_TIMEOUT = 0.5


@pytest.fixture
def settings(settings: ServerSettings) -> ServerSettings:
    """The usual test settings, with one upload at a time and half a second to send it."""
    return settings.model_copy(update={"max_uploads": 1, "upload_timeout": UPLOAD_TIMEOUT})


class Body:
    """A multipart upload of `archive` sent piece by piece, recording how much of it the
    server has pulled, and optionally stopping halfway until `resume` is set."""

    def __init__(self, archive: bytes, *, pause: bool = False) -> None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="p.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        self.parts = [head, archive, f"\r\n--{BOUNDARY}--\r\n".encode()]
        self.pulled = 0
        self.pause = pause
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, part in enumerate(self.parts):
            if self.pause and index == 1:
                self.paused.set()
                await self.resume.wait()
            self.pulled += 1
            yield part


def slots_in_use(app: FastAPI) -> int:
    runtime = app.state.runtime
    assert isinstance(runtime, ServerRuntime)
    return runtime.uploads.in_use


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        (None, "missing API key"),
        ("Basic dXNlcjpwYXNz", "malformed Authorization header"),
        ("Bearer ci_not-a-real-key", "API key"),
    ],
)
async def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(
    api: httpx.AsyncClient,
    repo: SqliteRepository,
    endpoint: str,
    authorization: str | None,
    fragment: str,
) -> None:
    body = Body(project_zip())
    headers = {**MULTIPART, **({"Authorization": authorization} if authorization else {})}
    response = await api.post(endpoint, headers=headers, content=body)

    assert response.status_code == 401
    assert fragment in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert body.pulled == 0
    assert await repo.list_jobs() == []


async def test_an_upload_past_the_slots_gets_503_without_its_body_being_read(
    app: FastAPI, api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    holding = Body(project_zip(), pause=True)
    first = asyncio.create_task(
        api.post("/submit-async", headers={**alice.headers, **MULTIPART}, content=holding)
    )
    async with asyncio.timeout(5):
        await holding.paused.wait()
    assert slots_in_use(app) == 1

    refused = Body(project_zip())
    response = await api.post("/submit", headers={**alice.headers, **MULTIPART}, content=refused)
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert "CI_MAX_UPLOADS" in response.json()["detail"]
    assert refused.pulled == 0

    holding.resume.set()
    async with asyncio.timeout(5):
        accepted = await first
    assert accepted.status_code == 202, accepted.text
    assert slots_in_use(app) == 0
    again = await api.post(
        "/submit-async", headers={**alice.headers, **MULTIPART}, content=Body(project_zip())
    )
    assert again.status_code == 202, again.text
    assert len(await repo.list_jobs()) == 2


async def test_an_upload_that_stalls_gets_408_and_frees_its_slot(
    app: FastAPI, api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    stalled = Body(project_zip(), pause=True)
    started = time.monotonic()
    response = await api.post(
        "/submit-async", headers={**alice.headers, **MULTIPART}, content=stalled
    )
    assert response.status_code == 408
    assert time.monotonic() - started < UPLOAD_TIMEOUT + 2
    assert f"within {UPLOAD_TIMEOUT:g} s" in response.json()["detail"]
    assert "CI_UPLOAD_TIMEOUT" in response.json()["detail"]
    assert slots_in_use(app) == 0
    assert await repo.list_jobs() == []

    after = await api.post(
        "/submit-async", headers={**alice.headers, **MULTIPART}, content=Body(project_zip())
    )
    assert after.status_code == 202, after.text
