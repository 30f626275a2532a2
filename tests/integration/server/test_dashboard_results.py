"""The job page's test results and artifacts and the jobs page's test counts, through the real
app; the `repo` fixture plays the controller storing results and kept files. (What a browser
does with them, live, is in tests/e2e/test_dashboard_results.py.)"""

from __future__ import annotations

import io
import re

import httpx

from ci_common.models import JobConclusion, JobId
from ci_common.test_results import TestOutcome, TestReport
from ci_persistence import SqliteRepository

from .conftest import Account
from .test_dashboard import sign_in, submit

FAILED = TestReport(
    nodeid="tests/test_cart.py::test_total",
    outcome=TestOutcome.FAILED,
    phase="call",
    message="assert 41 == <b>42</b>",
    traceback="def test_total():\n>       assert total() == 42\nE       assert 41 == 42",
    output="----- Captured stdout call -----\ncomputing total",
)
ERRORED = TestReport(
    nodeid="tests/test_cart.py::test_db",
    outcome=TestOutcome.ERROR,
    phase="setup",
    message="RuntimeError: no database",
    traceback="@pytest.fixture\ndef db():\n>       raise RuntimeError('no database')",
)
SKIPPED = TestReport(
    nodeid="tests/test_cart.py::test_later",
    outcome=TestOutcome.SKIPPED,
    phase="setup",
    message="not yet",
)
PASSED = TestReport(nodeid="tests/test_cart.py::test_ok", outcome=TestOutcome.PASSED, phase="call")


def results_of(html: str, group: str) -> list[str]:
    """The node ids listed in one group of the page, in order."""
    start = html.index(f'id="results-{group}"')
    block = html[start : html.index("</ol>", start)]
    return re.findall(r'<code class="nodeid">([^<]+)</code>', block)


async def test_the_jobs_page_and_the_job_page_show_the_jobs_test_counts(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    job_id = await submit(repo, alice)
    await repo.record_test_results(job_id, [PASSED, FAILED, ERRORED, SKIPPED], cursor=None)
    await sign_in(api, alice.key)

    for path in ("/ui/", "/ui/jobs-rows"):
        rows = (await api.get(path)).text
        assert "1/4 passed, <strong>1 failed</strong>, <strong>1 error</strong>" in rows, path
    summary = (await api.get(f"/ui/jobs/{job_id}/summary")).text
    assert "4 reported so far" in summary
    assert "✗ 1 failed" in summary and "! 1 error" in summary and "↷ 1 skipped" in summary


async def test_failures_and_errors_come_first_with_message_traceback_and_output(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    job_id = await submit(repo, alice)
    await repo.record_test_results(job_id, [PASSED, FAILED, SKIPPED, ERRORED], cursor=None)
    await sign_in(api, alice.key)

    page = (await api.get(f"/ui/jobs/{job_id}")).text
    assert page.index('id="results-failing"') < page.index('id="results-other"')
    assert results_of(page, "failing") == [FAILED.nodeid, ERRORED.nodeid]
    assert results_of(page, "other") == [PASSED.nodeid, SKIPPED.nodeid]
    failure = page[page.index('id="test-2"') : page.index("</li>", page.index('id="test-2"'))]
    assert "assert 41 == &lt;b&gt;42&lt;/b&gt;" in failure  # text, never markup
    assert '<details class="traceback" open><summary>Traceback</summary>' in failure
    assert "&gt;       assert total() == 42" in failure
    assert '<details class="output"><summary>Captured output</summary>' in failure
    assert "· in setup" in page and "not yet" in page
    assert f'data-reported="{4}"' in page


async def test_the_outcome_filter_shows_one_outcome_in_the_page_and_its_fragment(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account, bob: Account
) -> None:
    job_id = await submit(repo, alice)
    await repo.record_test_results(job_id, [PASSED, FAILED, SKIPPED, ERRORED], cursor=None)
    await sign_in(api, alice.key)

    page = (await api.get(f"/ui/jobs/{job_id}?outcome=skipped")).text
    assert results_of(page, "skipped") == [SKIPPED.nodeid]
    assert 'id="results-failing"' not in page
    assert '<option value="skipped" selected>' in page
    fragment = await api.get(f"/ui/jobs/{job_id}/tests?outcome=error")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert results_of(fragment.text, "error") == [ERRORED.nodeid]
    anything = (await api.get(f"/ui/jobs/{job_id}/tests?outcome=exploded")).text
    assert results_of(anything, "failing") == [FAILED.nodeid, ERRORED.nodeid]

    await sign_in(api, bob.key)
    assert (await api.get(f"/ui/jobs/{job_id}/tests")).status_code == 404
    rows = await api.get(f"/ui/jobs/{job_id}/tests/rows?outcome=failed")
    assert rows.status_code == 404


async def test_a_long_list_is_capped_and_its_rows_continue_after_an_index(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    job_id = await submit(repo, alice)
    failures = [
        TestReport(nodeid=f"t.py::test_{n:03d}", outcome=TestOutcome.FAILED, phase="call")
        for n in range(30)
    ]
    await repo.record_test_results(job_id, [PASSED, *failures], cursor=None)
    await sign_in(api, alice.key)

    page = (await api.get(f"/ui/jobs/{job_id}")).text
    assert len(results_of(page, "failing")) == 25
    assert 'data-after="26"' in page  # the 25th failure is result 26 (after one pass)
    more = re.search(
        r'<button type="button" class="show-more" data-for="results-failing"[^>]*>', page
    )
    assert more is not None and "hidden" not in more.group(0)

    rows = await api.get(
        f"/ui/jobs/{job_id}/tests/rows?outcome=failed&outcome=error&after=26&limit=25"
    )
    assert rows.headers["x-more-results"] == "false"
    assert re.findall(r'data-index="(\d+)"', rows.text) == [str(i) for i in range(27, 32)]
    probe = await api.get(f"/ui/jobs/{job_id}/tests/rows?outcome=passed&after=0&limit=0")
    assert probe.headers["x-more-results"] == "true" and "data-index" not in probe.text
    assert (await api.get(f"/ui/jobs/{job_id}/tests/rows?after=0")).status_code == 422


async def test_the_artifacts_are_listed_with_links_that_download_them(
    api: httpx.AsyncClient, repo: SqliteRepository, alice: Account
) -> None:
    job_id = await submit(repo, alice)
    await sign_in(api, alice.key)
    page = (await api.get(f"/ui/jobs/{job_id}")).text
    assert '<p class="muted" id="no-results">No test results so far.</p>' in page
    assert page.count('-heading" hidden>') == 2  # both groups hidden until a row arrives
    waiting = (await api.get(f"/ui/jobs/{job_id}/artifacts")).text
    assert "Kept once pytest has exited" in waiting and 'data-status="running"' in waiting

    report = b"<testsuites/>\n"
    page_bytes = b"<h1>coverage</h1>\n" * 100
    await repo.store_artifact(
        JobId(job_id), path="junit.xml", size=len(report), content=io.BytesIO(report)
    )
    await repo.store_artifact(
        JobId(job_id), path="htmlcov/a b.html", size=len(page_bytes), content=io.BytesIO(page_bytes)
    )
    await repo.complete_job(JobId(job_id), conclusion=JobConclusion.FAILURE, exit_code=1)

    listed = (await api.get(f"/ui/jobs/{job_id}")).text
    links = re.findall(r'<a href="(/jobs/[^"]+/artifacts/[^"]+)" download>([^<]+)</a>', listed)
    assert [name for _, name in links] == ["htmlcov/a b.html", "junit.xml"]
    assert "(1.8 KiB)" in listed
    fragment = (await api.get(f"/ui/jobs/{job_id}/artifacts")).text
    assert 'data-status="completed"' in fragment
    for href, content in zip((link for link, _ in links), (page_bytes, report), strict=True):
        assert href.endswith(("htmlcov/a%20b.html", "junit.xml"))
        downloaded = await api.get(href)
        assert downloaded.status_code == 200 and downloaded.content == content
