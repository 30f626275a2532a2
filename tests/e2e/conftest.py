"""E2E fixtures: a real CI service per test (see `harness`), after a session-wide check that
Docker and the job image are there. Nothing is skipped: without them every e2e test fails
with a message saying to run scripts/install-docker and scripts/build-job-image."""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import cast

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dashboard_browser import CHROMIUM, CHROMIUM_ARGS
from harness import CIService, MakeService, check_docker_and_image
from playwright.sync_api import Browser, BrowserContext, sync_playwright

__all__ = ["MakeService"]  # tests import it from here or from harness


@pytest.fixture(scope="session")
def docker_ready() -> None:
    problem = check_docker_and_image()
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def make_service(docker_ready: None, tmp_path: Path) -> Iterator[MakeService]:
    """Start a service: `make_service(controller_env={...}, controller=True, server=True)`.

    Every service made is closed at the end of the test, whatever happened.
    """
    made: list[CIService] = []

    def make(
        *,
        env: Mapping[str, str] | None = None,
        server: bool = True,
        controller: bool = True,
    ) -> CIService:
        service = CIService.create(tmp_path / f"ci-{len(made)}", env=env)
        made.append(service)
        # Both start at once; their start-up times overlap.
        started = service.start_controller(wait=False) if controller else None
        if server:
            service.start_server()
        if started is not None:
            started.wait_for_output("controller started")
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def make_postgres_service(postgres_url: str, make_service: MakeService) -> MakeService:
    """`make_service` on a fresh PostgreSQL database (`CI_DATABASE_URL`) instead of a SQLite
    file. Every service made shares that database, as replicas would; they are closed before
    it is dropped (this fixture asks for the database first)."""

    def make(*, env: Mapping[str, str] | None = None, **kwargs: bool) -> CIService:
        return make_service(env={"CI_DATABASE_URL": postgres_url, **(env or {})}, **kwargs)

    return make


@pytest.fixture
def service(make_service: MakeService) -> CIService:
    """A running service with default settings (server and one controller)."""
    return make_service()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the output of the processes the test started."""
    report = yield
    if report.when == "call" and report.failed:
        tmp = cast(dict[str, object], getattr(item, "funcargs", {})).get("tmp_path")
        if isinstance(tmp, Path):
            for log in sorted(tmp.glob("ci-*/*.log")):
                text = log.read_text(errors="replace")[-6000:]
                report.sections.append((f"{log.parent.name}/{log.name}", text))
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module; each test gets its own contexts (cookies)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """The browser contexts a test made (`browser.new_page`), closed after it."""
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()
