"""Dashboard log benchmark: a job page in headless Chromium following a 50,000-line log.

Starts a real server on a temporary database holding a running job, signs in through the
form, opens the job page, then appends `--lines` coloured lines (`--per-chunk` lines a chunk,
as fast as SQLite takes them) and completes the job. Reports how long the page took to show
the last line after it was stored, the browser's long tasks (main-thread work over 50 ms, what
makes a page stutter), and the same for opening the finished job afresh (a full replay).

    .venv/bin/python bench/dashboard_log.py                  # 50,000 lines, 100 per chunk

Exit status 1 when the longest task passes `--max-task-ms` (default 200).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from sse_fanout import prepare, server_ready, start_server, wait_until

from ci_common.models import JobConclusion, JobId
from ci_persistence import open_repository

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""


async def write_lines(db_path: Path, job_id: JobId, *, lines: int, per_chunk: int) -> float:
    repo = await open_repository(db_path)
    try:
        for start in range(0, lines, per_chunk):
            text = "".join(
                f"\x1b[32mPASSED\x1b[0m tests/test_{n % 97}.py::test_case_{n} \x1b[1m[{n}]\x1b[0m\n"
                for n in range(start, min(lines, start + per_chunk))
            )
            await repo.append_log(job_id, text, cursor=None)
        stored = time.monotonic()
        await repo.complete_job(job_id, conclusion=JobConclusion.SUCCESS, exit_code=0)
        return stored
    finally:
        await repo.close()


def tasks(page: Page) -> list[float]:
    return list(page.evaluate("window.__longTasks.splice(0)"))


def report(name: str, seconds: float, long_tasks: list[float]) -> float:
    longest = max(long_tasks, default=0.0)
    print(
        f"{name}: last line shown {seconds:.2f} s after it was stored; "
        f"{len(long_tasks)} long tasks, {sum(long_tasks):.0f} ms in all, longest {longest:.0f} ms"
    )
    return longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--per-chunk", type=int, default=100)
    parser.add_argument("--max-task-ms", type=float, default=200)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "ci.db"
        job_id, key = asyncio.run(prepare(db_path))
        server, port, sock = start_server(db_path, Path(tmp) / "server.log")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: server_ready(port), timeout=20, what="the server")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.add_init_script(LONG_TASKS)
                page.goto(f"{base}/ui/login")
                page.fill("#api_key", key)
                page.click("button[type=submit]")
                page.goto(f"{base}/ui/jobs/{job_id}")
                page.wait_for_selector("#log-state:has-text('Following')")
                tasks(page)
                # Playwright's sync API owns this thread's event loop; the writer gets its own.
                with ThreadPoolExecutor(1) as writer:
                    stored = writer.submit(
                        asyncio.run,
                        write_lines(
                            db_path, JobId(job_id), lines=options.lines, per_chunk=options.per_chunk
                        ),
                    ).result()
                page.wait_for_selector("#log[data-done='true']", timeout=300_000)
                live = report("live", time.monotonic() - stored, tasks(page))
                shown = int(page.get_attribute("#log", "data-lines") or 0)
                opened = time.monotonic()
                page.reload()
                page.wait_for_selector("#log[data-done='true']", timeout=300_000)
                replay = report("replay", time.monotonic() - opened, tasks(page))
                text = page.text_content("#log") or ""
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
            sock.close()
    rows = len(re.findall(r"test_case_\d+ ", text))
    print(f"lines counted live: {shown}; lines in the replayed page: {rows}")
    ok = rows == options.lines and max(live, replay) <= options.max_task_ms
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
