"""A test that says it started, then sleeps far longer than any e2e test waits."""

import time


def test_sleeps() -> None:
    print("sleeping now", flush=True)
    time.sleep(600)
