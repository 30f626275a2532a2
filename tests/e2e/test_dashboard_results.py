"""A job's test results and artifacts on its dashboard page, in Debian's Chromium against a
real server and controller running a real job in Docker.

The job's project has passing, failing, erroring, skipped and xfailed tests, and one test that
waits for a file this test creates in its container (`docker exec`) once the page is open, so
the failure reported after it must reach the open page live. The test saves the screenshot of
a failed job's results the README shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_browser import SCREENSHOTS, new_page, sign_in, submit
from harness import MakeService, docker_client
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = pytest.mark.e2e

GATE = "/tmp/ci-e2e-page-open"
REPORT = bytes(range(256)) * 8 + "résumé ✓\n".encode()
PASSING = 110

SHOP_TESTS = f"""\
import time
from pathlib import Path

import pytest

GATE = Path({GATE!r})


@pytest.mark.parametrize("n", range({PASSING}))
def test_a_passes(n):
    if n == 0:
        (Path(__file__).parent / "report.bin").write_bytes({REPORT!r})


def test_b_fails():
    print("computing the total")
    assert 41 == 42, "the total is off by one"


def test_c_skipped():
    pytest.skip("not on this platform")


@pytest.fixture
def database():
    raise RuntimeError("no database here")


def test_d_errors(database):
    pass


@pytest.mark.xfail(reason="a known bug")
def test_e_xfails():
    assert False


def test_f_waits_for_the_page():
    deadline = time.monotonic() + 60
    while not GATE.exists():
        assert time.monotonic() < deadline, "the page never opened"
        time.sleep(0.05)


def test_g_fails_late():
    assert "late" == "on time"
"""


def nodeids(page: Page, group: str) -> list[str]:
    return page.locator(f"#results-{group} li .nodeid").all_text_contents()


def open_gate(container_id: str) -> None:
    client = docker_client()
    try:
        done = client.containers.get(container_id).exec_run(["touch", GATE])
        assert done.exit_code == 0, done.output
    finally:
        client.close()


def test_failures_come_first_live_with_traceback_filter_and_artifact_download(
    make_service: MakeService, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    service = make_service()
    project = tmp_path / "shop"
    project.mkdir()
    (project / "test_shop.py").write_text(SHOP_TESTS)
    page = new_page(browser, contexts)
    sign_in(page, service.base_url, service.api_key)
    job_id = submit(
        service.base_url, service.api_key, project, pytest_args=["-q"], artifacts=["report.bin"]
    )
    page.goto(f"{service.base_url}/ui/jobs/{job_id}")
    page.evaluate("window.stillTheSamePage = true")

    # While the job waits on its gate: the two failures so far, first, with what went wrong.
    failing = page.locator("#results-failing")
    expect(failing.locator("li")).to_have_count(2)
    assert nodeids(page, "failing") == ["test_shop.py::test_b_fails", "test_shop.py::test_d_errors"]
    expect(page.locator("#job-status")).to_contain_text("running")
    failure = failing.locator("li").first
    expect(failure.locator(".message")).to_contain_text("the total is off by one")
    expect(failure.locator("details.traceback pre")).to_be_visible()
    expect(failure.locator("details.traceback pre")).to_contain_text("assert 41 == 42")
    expect(failure.locator("details.output pre")).to_be_hidden()  # collapsed until asked
    expect(failure.locator("details.output pre")).to_contain_text("computing the total")
    expect(failing.locator("li").nth(1)).to_contain_text("in setup")
    expect(page.locator("#test-counts")).to_contain_text("✗ 1 failed")

    [(container_id,)] = service.query("SELECT container_id FROM jobs WHERE id = ?", job_id)
    assert isinstance(container_id, str)
    open_gate(container_id)

    # The failure after the gate arrives in the open page, once; then the job ends.
    expect(failing.locator("li")).to_have_count(3)
    assert nodeids(page, "failing")[2] == "test_shop.py::test_g_fails_late"
    expect(page.locator("#job-conclusion")).to_contain_text("failure")
    expect(page.locator("#test-counts")).to_contain_text("✗ 2 failed")
    expect(page.locator("#test-counts")).to_contain_text("! 1 error")
    expect(page.locator("#test-counts")).to_contain_text(f"✓ {PASSING + 1} passed")
    indexes = failing.locator("li").evaluate_all("rows => rows.map(r => r.dataset.index)")
    assert len(set(indexes)) == 3

    # The other outcomes after them, capped; "Show more" brings the rest.
    others = page.locator("#results-other li")
    expect(others).to_have_count(100)
    page.get_by_role("button", name="Show more: other results").click()
    expect(others).to_have_count(PASSING + 3)  # and the skip, the xfail, the gate
    expect(page.get_by_role("button", name="Show more: other results")).to_be_hidden()

    # The filter, from the keyboard, in place: the log keeps its stream, the address the filter.
    page.locator("#outcome-filter").select_option("skipped")
    page.get_by_role("button", name="Show").press("Enter")
    expect(page.locator("#results-skipped li")).to_have_count(1)
    expect(page.locator("#results-skipped")).to_contain_text("not on this platform")
    expect(page.locator("#results-failing")).to_have_count(0)
    assert page.url.endswith(f"/ui/jobs/{job_id}?outcome=skipped#tests")
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator("#outcome-filter")).to_be_focused()
    page.locator("#outcome-filter").select_option("all")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#results-failing li")).to_have_count(3)
    page.locator("#outcome-filter").blur()
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "job-failed.png"))

    # The artifacts: junit.xml and the pattern's file, downloaded byte for byte.
    expect(page.locator("#artifacts").get_by_role("link", name="junit.xml")).to_be_visible()
    with page.expect_download() as download:
        page.locator("#artifacts").get_by_role("link", name="report.bin").click()
    downloaded = download.value
    assert downloaded.suggested_filename == "report.bin"
    assert Path(downloaded.path()).read_bytes() == REPORT

    # The jobs page counts them in the job's row.
    page.get_by_role("link", name="Jobs").click()
    row = page.locator("tr", has=page.locator(f"#job-{job_id}"))
    expect(row).to_contain_text(f"{PASSING + 1}/{PASSING + 6} passed, 2 failed, 1 error")
