"""Driving the dashboard in Debian's Chromium (headless, through Playwright): the launch
arguments, a page per browser context, signing in and submitting a job as `ci` would.

Playwright's own browser download is not reachable here, so it drives `/usr/bin/chromium`
(installed by scripts/install-chromium). The `browser` and `contexts` fixtures are in
conftest.py; the dashboard's test files use these helpers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import httpx
from harness import REPO_ROOT, zip_project
from playwright.sync_api import Browser, BrowserContext, Page, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


def new_page(browser: Browser, contexts: list[BrowserContext]) -> Page:
    """A page in a context of its own (its own cookies), closed by the `contexts` fixture."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    contexts.append(context)
    return context.new_page()


def sign_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/ui/")
    expect(page).to_have_url(f"{base_url}/ui/login")
    page.fill("#api_key", key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/ui/")


def submit(
    base_url: str,
    key: str,
    project: Path,
    *,
    pytest_args: Sequence[str] = ("-s", "-q"),
    artifacts: Sequence[str] = (),
) -> str:
    """`POST /submit-async` with the provenance `ci` would send from a git checkout (by
    default with `-s`, so the test's prints reach the log as they happen)."""
    git = {"commit": "1a2b3c4d5e6f" + "0" * 28, "branch": "main", "dirty": False}
    fields = {"pytest_args": json.dumps(list(pytest_args)), "project": "inventory"}
    fields["git"] = json.dumps(git)
    if artifacts:
        fields["artifacts"] = json.dumps(list(artifacts))
    response = httpx.post(
        f"{base_url}/submit-async",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": ("project.zip", zip_project(project), "application/zip")},
        data=fields,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])
