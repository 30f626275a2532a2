"""The dashboard's HTTP contract through the real app: sign-in and its cookie, CSRF, the rate
limit, isolation, the admin pages, filters, the queue position and `/docs` without a CDN.
(What a browser does with these pages is in tests/e2e/test_dashboard_browser.py.)"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ci_common.job_options import JobOptions
from ci_common.models import ApiKeyId, JobConclusion, JobId
from ci_common.repository import Repository
from ci_server import ServerSettings, create_app

from .conftest import Account, project_zip

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(db_path: Path, database_url: str | None) -> ServerSettings:
    """Two running slots, whatever this machine's CPU count."""
    return ServerSettings(db_path=db_path, database_url=database_url, max_parallel_jobs=2)


async def sign_in(api: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await api.get("/ui/login")
    token = TOKEN.search(form.text)
    assert token is not None
    return await api.post("/ui/login", data={"api_key": key, "csrf_token": token.group(1)})


async def page_csrf(api: httpx.AsyncClient, path: str = "/ui/") -> str:
    page = await api.get(path)
    token = TOKEN.search(page.text)
    assert token is not None, page.text
    return token.group(1)


async def submit(repo: Repository, account: Account) -> JobId:
    return (await repo.create_job(user_id=account.user.id, archive=project_zip())).id


async def test_sign_in_sets_a_signed_httponly_strict_expiring_cookie_and_shows_no_key(
    api: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await api.get("/ui/")).headers["location"] == "/ui/login"
    with caplog.at_level(logging.DEBUG):
        signed_in = await sign_in(api, alice.key)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui/"
    cookie = next(
        value
        for name, value in signed_in.headers.multi_items()
        if name == "set-cookie" and value.startswith("ci_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert alice.key not in cookie
    jobs = await api.get("/ui/")
    assert jobs.status_code == 200 and "Your jobs" in jobs.text
    assert alice.key not in jobs.text
    assert alice.key not in caplog.text
    assert jobs.headers["cache-control"] == "no-store"


async def test_a_sign_in_without_the_forms_token_or_from_another_site_is_refused(
    api: httpx.AsyncClient, alice: Account
) -> None:
    bare = await api.post("/ui/login", data={"api_key": alice.key, "csrf_token": "guess"})
    assert bare.status_code == 400 and "ci_session" not in bare.headers.get("set-cookie", "")
    form = await api.get("/ui/login")
    token = TOKEN.search(form.text)
    assert token is not None
    cross = await api.post(
        "/ui/login",
        data={"api_key": alice.key, "csrf_token": token.group(1)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403


async def test_failed_sign_ins_are_rate_limited_per_client(
    api: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(5):
        assert (await sign_in(api, "ci_" + "x" * 43)).status_code == 401
    blocked = await sign_in(api, alice.key)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert "Too many failed sign-ins" in blocked.text


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_session_from_one_replica_works_on_another_until_the_key_is_revoked(
    api: httpx.AsyncClient,
    settings: ServerSettings,
    repo: Repository,
    alice: Account,
) -> None:
    await sign_in(api, alice.key)
    other: FastAPI = create_app(settings)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other),
            base_url="http://testserver",
            cookies=api.cookies,
        ) as replica,
    ):
        assert (await replica.get("/ui/")).status_code == 200
        [key] = await repo.list_api_keys(user_id=alice.user.id)
        await repo.revoke_api_key(ApiKeyId(key.id))
        assert (await replica.get("/ui/")).headers["location"] == "/ui/login"
        assert (await replica.get("/jobs")).status_code == 401


async def test_a_tampered_cookie_is_no_session(api: httpx.AsyncClient, alice: Account) -> None:
    await sign_in(api, alice.key)
    cookie = api.cookies["ci_session"]
    api.cookies.clear()
    api.cookies.set("ci_session", cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert (await api.get("/ui/")).headers["location"] == "/ui/login"


async def test_the_api_takes_the_session_cookie_and_a_change_needs_the_csrf_header(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = await submit(repo, alice)
    await sign_in(api, alice.key)
    assert [job["id"] for job in (await api.get("/jobs")).json()] == [job_id]
    refused = await api.post(f"/jobs/{job_id}/cancel")
    assert refused.status_code == 401 and "X-CSRF-Token" in refused.json()["detail"]
    token = await page_csrf(api)
    cancelled = await api.post(f"/jobs/{job_id}/cancel", headers={"X-CSRF-Token": token})
    assert cancelled.status_code == 200 and cancelled.json()["conclusion"] == "cancelled"


async def test_a_form_post_without_the_token_is_refused_and_with_it_cancels(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job_id = await submit(repo, alice)
    await sign_in(api, alice.key)
    forged = await api.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": "nope"})
    assert forged.status_code == 403
    assert (await repo.get_job(job_id)).conclusion is None
    token = await page_csrf(api, f"/ui/jobs/{job_id}")
    done = await api.post(f"/ui/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == f"/ui/jobs/{job_id}"
    assert (await repo.get_job(job_id)).conclusion is JobConclusion.CANCELLED


async def test_another_users_job_and_the_admin_pages_are_404(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    bobs = await submit(repo, bob)
    await sign_in(api, alice.key)
    token = await page_csrf(api)
    for path in (
        f"/ui/jobs/{bobs}",
        f"/ui/jobs/{bobs}/summary",
        f"/ui/jobs/{bobs}/artifacts",
        f"/ui/jobs/{bobs}/tests",
        f"/ui/jobs/{bobs}/tests/rows?outcome=failed",
        "/ui/jobs/not-a-uuid",
    ):
        assert (await api.get(path)).status_code == 404, path
    assert (await api.get("/ui/admin")).status_code == 404
    assert (await api.get("/ui/admin/queue")).status_code == 404
    posted = await api.post(f"/ui/admin/jobs/{bobs}/cancel", data={"csrf_token": token})
    assert posted.status_code == 404
    posted = await api.post(f"/ui/jobs/{bobs}/cancel", data={"csrf_token": token})
    assert posted.status_code == 404
    assert (await repo.get_job(bobs)).conclusion is None


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_an_admin_sees_every_job_cancels_any_and_manages_users_and_keys(
    app: FastAPI, api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    await repo.set_user_admin(alice.user.id, is_admin=True)
    bobs = await submit(repo, bob)
    await sign_in(api, alice.key)
    admin = await api.get("/ui/admin")
    assert admin.status_code == 200
    assert f"job-{bobs}" in admin.text and bob.user.email in admin.text
    assert "0 of 2 running slots busy, 1 job queued" in admin.text
    token = await page_csrf(api, "/ui/admin")

    cancelled = await api.post(f"/ui/admin/jobs/{bobs}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303
    assert (await repo.get_job(bobs)).conclusion is JobConclusion.CANCELLED

    made = await api.post(
        "/ui/admin/users",
        data={"csrf_token": token, "name": "Carol", "email": "carol@example.org"},
    )
    assert made.status_code == 303
    carol = await repo.get_user_by_email("carol@example.org")
    assert not carol.is_admin
    key_page = await api.post(
        f"/ui/admin/users/{carol.id}/keys", data={"csrf_token": token, "name": "laptop"}
    )
    secret = re.search(r"<code>(ci_[^<]+)</code>", key_page.text)
    assert secret is not None
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {secret.group(1)}"},
    ) as as_carol:
        assert (await as_carol.get("/jobs")).status_code == 200
        [key] = await repo.list_api_keys(user_id=carol.id)
        revoked = await api.post(f"/ui/admin/keys/{key.id}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303
        assert (await as_carol.get("/jobs")).status_code == 401
    off = await api.post(f"/ui/admin/users/{bob.user.id}/deactivate", data={"csrf_token": token})
    assert off.status_code == 303
    assert not (await repo.get_user(bob.user.id)).active


async def test_the_admin_pages_name_users_and_keys_by_their_full_uuid(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    await repo.set_user_admin(alice.user.id, is_admin=True)
    await sign_in(api, alice.key)
    page = (await api.get("/ui/admin")).text
    [bobs_key] = await repo.list_api_keys(user_id=bob.user.id)
    assert f'action="/ui/admin/users/{bob.user.id}/deactivate"' in page
    assert f'action="/ui/admin/keys/{bobs_key.id}/revoke"' in page
    token = await page_csrf(api, "/ui/admin")

    upper = await api.post(
        f"/ui/admin/users/{bob.user.id.upper()}/deactivate", data={"csrf_token": token}
    )
    assert upper.status_code == 303, "the same UUID in capitals names the same user"
    assert not (await repo.get_user(bob.user.id)).active
    for path in (
        f"/ui/admin/users/{bob.user.id[:8]}/activate",
        "/ui/admin/users/1/activate",
        f"/ui/admin/users/{bobs_key.id}/activate",
        f"/ui/admin/keys/{bobs_key.id[:8]}/revoke",
        "/ui/admin/keys/1/revoke",
    ):
        assert (await api.post(path, data={"csrf_token": token})).status_code == 404, path
    assert not (await repo.get_user(bob.user.id)).active
    assert (await repo.list_api_keys(user_id=bob.user.id))[0].revoked_at is None


async def test_the_job_page_says_which_python_the_job_runs_on(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    job = await repo.create_job(
        user_id=alice.user.id, archive=project_zip(), options=JobOptions(python="3.13")
    )
    older = await submit(repo, alice)
    await sign_in(api, alice.key)
    page = (await api.get(f"/ui/jobs/{job.id}")).text
    assert '<dt>Python</dt><dd id="job-python">3.13</dd>' in page
    assert 'id="job-python"' not in (await api.get(f"/ui/jobs/{older}/summary")).text


async def test_the_jobs_page_filters_by_status_and_conclusion(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    queued, cancelled = await submit(repo, alice), await submit(repo, alice)
    await repo.request_cancel(cancelled)
    await sign_in(api, alice.key)
    everything = (await api.get("/ui/")).text
    assert f"job-{queued}" in everything and f"job-{cancelled}" in everything
    only = (await api.get("/ui/?status=&conclusion=cancelled")).text
    assert f"job-{queued}" not in only and f"job-{cancelled}" in only
    rows = (await api.get("/ui/jobs-rows?status=queued")).text
    assert f"job-{queued}" in rows and f"job-{cancelled}" not in rows


async def test_a_queued_job_says_where_it_stands_and_why_it_waits(
    api: httpx.AsyncClient, repo: Repository, alice: Account
) -> None:
    first, second = await submit(repo, alice), await submit(repo, alice)
    third = await submit(repo, alice)
    for job_id in (first, second):
        assert await repo.mark_running(job_id, container_id=None)
    await sign_in(api, alice.key)
    summary = (await api.get(f"/ui/jobs/{third}/summary")).text
    assert "position 1 of 1 waiting" in summary
    assert "2 of 2 slots are busy" in summary


@pytest.fixture
async def plain_api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def test_docs_load_swagger_ui_from_this_server(plain_api: httpx.AsyncClient) -> None:
    docs = await plain_api.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        assert (await plain_api.get(url)).status_code == 200, url
    assert (await plain_api.get("/redoc")).status_code == 404
