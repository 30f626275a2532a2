"""The web dashboard in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real server and controller running real jobs in Docker.

What a user does with only a browser and an API key: sign in, watch a submitted job appear in
the list and its log grow live, cancel it, survive a dropped connection, be refused another
user's job, sign out; what an admin does: see and cancel every user's job. `/docs` renders
with every request to anywhere but this machine blocked. The tests save the screenshots the
README shows (docs/screenshots/).
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dashboard_browser import SCREENSHOTS, new_page, sign_in, submit
from harness import CIService, MakeService, wait_until
from playwright.sync_api import Browser, BrowserContext, Page, expect
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[@-~]")

SLOW_TEST = """\
import time


def test_prints_lines():
    for i in range({lines}):
        print(f"\\x1b[32mline {{i:04d}}\\x1b[0m of the log", flush=True)
        time.sleep({pause})
"""


def slow_project(root: Path, *, lines: int, pause: float) -> Path:
    root.mkdir(parents=True)
    (root / "test_slow.py").write_text(SLOW_TEST.format(lines=lines, pause=pause))
    return root


def log_lines(page: Page) -> int:
    return int(page.locator("#log").get_attribute("data-lines") or "0")


def make_admin(service: CIService, email: str) -> str:
    made = service.admin("user", "create", "--name", "Root", "--email", email, "--admin")
    assert made.returncode == 0, made.stderr
    key = service.admin("key", "create", "--email", email, "--name", "browser", "--json")
    assert key.returncode == 0, key.stderr
    return str(json.loads(key.stdout)["key"])


def test_sign_in_follow_a_job_live_cancel_it_and_sign_out(
    make_service: MakeService, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    service = make_service()
    page = new_page(browser, contexts)

    page.goto(f"{service.base_url}/ui/")
    page.fill("#api_key", "ci_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("unknown API key")
    page.fill("#api_key", service.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{service.base_url}/ui/")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "ci_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert time.time() < cookie["expires"] < time.time() + 13 * 3600
    assert service.api_key not in page.content()

    # A job submitted elsewhere appears without a reload, and its log grows live.
    job_id = submit(
        service.base_url, service.api_key, slow_project(tmp_path / "p", lines=600, pause=0.05)
    )
    row = page.locator(f"#job-{job_id}")
    expect(row).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "jobs.png"))
    row.click()
    expect(page).to_have_url(f"{service.base_url}/ui/jobs/{job_id}")
    expect(page.locator("#log")).to_contain_text("line 0003 of the log")
    seen = log_lines(page)
    wait_until(lambda: log_lines(page) > seen + 10, within=20, what="the log to grow live")
    # ANSI colours are rendered, not printed: green is a class, the escape is gone.
    expect(page.locator("#log .fg-c2").first).to_contain_text("line 0")
    assert "\x1b" not in (page.locator("#log").text_content() or "")
    expect(page.locator("#job-status")).to_contain_text("running")
    page.screenshot(path=str(SCREENSHOTS / "job-running.png"))

    # Scrolled up, the view stays put while lines arrive; "Follow" goes back to the end.
    log = page.locator("#log")
    wait_until(
        lambda: log.evaluate("v => v.scrollHeight > v.clientHeight + 200"),
        within=20,
        what="a log taller than its view",
    )
    log.evaluate("v => { v.scrollTop = 0; }")
    expect(page.get_by_role("button", name="Follow the end of the log")).to_be_visible()
    grown = log_lines(page)
    wait_until(lambda: log_lines(page) > grown + 5, within=20, what="more lines")
    assert log.evaluate("v => v.scrollTop") == 0
    page.get_by_role("button", name="Follow the end of the log").click()
    wait_until(
        lambda: log.evaluate("v => v.scrollHeight - v.scrollTop - v.clientHeight < 24"),
        within=5,
        what="the view to follow the end again",
    )

    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-conclusion")).to_contain_text("cancelled")
    assert service.job(job_id)["conclusion"] == "cancelled"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{service.base_url}/ui/login")
    assert not [c for c in page.context.cookies() if c["name"] == "ci_session"]
    page.goto(f"{service.base_url}/ui/jobs/{job_id}")
    expect(page).to_have_url(f"{service.base_url}/ui/login")


def test_a_dropped_connection_resumes_the_log_without_a_lost_or_doubled_line(
    make_service: MakeService, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    service = make_service()
    server_port = int(service.base_url.rsplit(":", 1)[1])
    proxy = TcpProxy(server_port)
    try:
        page = new_page(browser, contexts)
        sign_in(page, proxy.url, service.api_key)
        job_id = submit(
            service.base_url, service.api_key, slow_project(tmp_path / "p", lines=120, pause=0.04)
        )
        page.goto(f"{proxy.url}/ui/jobs/{job_id}")
        wait_until(lambda: log_lines(page) >= 10, within=30, what="the first lines")
        assert service.job(job_id)["status"] != "completed", "the drop must cut a live stream"
        proxy.drop()
        expect(page.locator("#log")).to_have_attribute("data-done", "true")
        assert int(page.locator("#log").get_attribute("data-reconnects") or "0") >= 1
        shown = page.locator("#log").text_content() or ""
        stored = ANSI.sub("", service.logs(job_id))
        assert shown.rstrip("\n") == stored.rstrip("\n")
        assert shown.count("line 0119 of the log") == 1
    finally:
        proxy.close()


def test_another_users_job_is_404_and_an_admin_sees_and_cancels_every_job(
    make_service: MakeService, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    service = make_service()
    with ThreadPoolExecutor(2) as pool:  # two `ci-admin` pairs at once: start-up dominates
        other = pool.submit(service.create_account, "other", "other@example.com")
        admin = pool.submit(make_admin, service, "root@example.com")
        other_key, admin_key = other.result(), admin.result()
    project = slow_project(tmp_path / "p", lines=1200, pause=0.05)
    mine = submit(service.base_url, service.api_key, project)
    theirs = submit(service.base_url, other_key, project)

    user_page = new_page(browser, contexts)
    sign_in(user_page, service.base_url, service.api_key)
    response = user_page.goto(f"{service.base_url}/ui/jobs/{theirs}")
    assert response is not None and response.status == 404
    response = user_page.goto(f"{service.base_url}/ui/admin")
    assert response is not None and response.status == 404

    admin_page = new_page(browser, contexts)
    sign_in(admin_page, service.base_url, admin_key)
    admin_page.get_by_role("link", name="Admin").click()
    expect(admin_page.locator("#slots")).to_contain_text("running slots busy")
    for job_id in (mine, theirs):
        expect(admin_page.locator(f"#job-{job_id}")).to_be_visible()
        admin_page.locator(f"#cancel-{job_id}").click()
        expect(admin_page.get_by_role("status")).to_contain_text(f"job {job_id[:8]}")
    for job_id in (mine, theirs):
        wait_until(
            lambda job_id=job_id: service.query(
                "SELECT 1 FROM jobs WHERE id = ? AND conclusion = 'cancelled'", job_id
            ),
            within=30,
            what=f"job {job_id} to end cancelled",
        )


def test_api_docs_render_with_every_outside_request_blocked(
    make_service: MakeService, browser: Browser, contexts: list[BrowserContext]
) -> None:
    service = make_service(controller=False)
    page = new_page(browser, contexts)
    blocked: list[str] = []

    def only_local(route: object) -> None:
        from playwright.sync_api import Route

        assert isinstance(route, Route)
        if route.request.url.startswith(service.base_url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{service.base_url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui .title")).to_contain_text("CI service")
    sign_in(page, service.base_url, service.api_key)
    assert blocked == []
