"""`GET /jobs/{id}/tests`, `GET /tests/flaky` and a submit with `rerun_failed_of`, through the
real app; the `repo` fixture plays the controller storing results."""

from __future__ import annotations

import httpx
import pytest

from ci_common.models import JobId
from ci_common.repository import Repository
from ci_common.test_results import TestOutcome, TestReport

from .conftest import Account, project_zip, zip_upload

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def submit(api: httpx.AsyncClient, account: Account, **fields: str) -> str:
    response = await api.post(
        "/submit-async", headers=account.headers, files=zip_upload(project_zip()), data=fields
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


async def store(repo: Repository, job_id: str, *outcomes: tuple[str, TestOutcome]) -> None:
    reports = [TestReport(nodeid=n, outcome=o, phase="call") for n, o in outcomes]
    await repo.record_test_results(JobId(job_id), reports, cursor=None)


async def test_results_are_listed_filtered_paged_and_counted_in_the_job(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    job_id = await submit(api, alice)
    await store(
        repo,
        job_id,
        ("t::a", TestOutcome.PASSED),
        ("t::b", TestOutcome.FAILED),
        ("t::c", TestOutcome.SKIPPED),
    )

    page = (await api.get(f"/jobs/{job_id}/tests?limit=2", headers=alice.headers)).json()
    assert [r["nodeid"] for r in page["results"]] == ["t::a", "t::b"]
    assert page["next_after"] == 2
    rest = (await api.get(f"/jobs/{job_id}/tests?after=2", headers=alice.headers)).json()
    assert ([r["index"] for r in rest["results"]], rest["next_after"]) == ([3], None)
    failed = (await api.get(f"/jobs/{job_id}/tests?outcome=failed", headers=alice.headers)).json()
    assert [r["nodeid"] for r in failed["results"]] == ["t::b"]
    job = (await api.get(f"/jobs/{job_id}", headers=alice.headers)).json()
    assert (job["tests"]["total"], job["tests"]["failed"], job["tests"]["skipped"]) == (3, 1, 1)
    listed = (await api.get("/jobs", headers=alice.headers)).json()
    assert listed[0]["tests"]["passed"] == 1
    assert (await api.get(f"/jobs/{job_id}/tests", headers=bob.headers)).status_code == 404
    bad = await api.get(f"/jobs/{job_id}/tests?outcome=exploded", headers=alice.headers)
    assert bad.status_code == 422


async def test_a_rerun_stores_the_failed_node_ids_and_is_refused_without_any(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    first = await submit(api, alice)
    await store(
        repo,
        first,
        ("t::a", TestOutcome.FAILED),
        ("t::b", TestOutcome.PASSED),
        ("t::c", TestOutcome.ERROR),
    )

    rerun = await submit(api, alice, rerun_failed_of=first)

    job = await repo.get_job(JobId(rerun))
    assert (job.rerun_of, job.rerun_node_ids) == (first, ("t::a", "t::c"))
    nothing = await api.post(
        "/submit-async",
        headers=alice.headers,
        files=zip_upload(project_zip()),
        data={"rerun_failed_of": rerun},
    )
    assert nothing.status_code == 422
    assert "nothing to rerun" in nothing.json()["detail"]
    foreign = await api.post(
        "/submit-async",
        headers=bob.headers,
        files=zip_upload(project_zip()),
        data={"rerun_failed_of": first},
    )
    assert foreign.status_code == 404


async def test_flaky_lists_only_the_callers_tests(
    api: httpx.AsyncClient, repo: Repository, alice: Account, bob: Account
) -> None:
    for outcome in (TestOutcome.FAILED, TestOutcome.PASSED):
        job_id = await submit(api, alice, project="wobbly")
        await repo.record_test_results(
            JobId(job_id),
            [TestReport(nodeid="t::w", outcome=outcome, phase="call")],
            cursor=None,
            content_hash="same",
        )

    flaky = (await api.get("/tests/flaky", headers=alice.headers)).json()
    assert [(f["project"], f["nodeid"], f["passes"], f["failures"]) for f in flaky] == [
        ("wobbly", "t::w", 1, 1)
    ]
    assert (await api.get("/tests/flaky", headers=bob.headers)).json() == []
