"""Prints 100 numbered lines over about four seconds, five at a time.

Used to check that a controller killed mid-job and restarted stores every line exactly once:
lines written in one burst often share a Docker timestamp, which the log cursor must handle.
"""

import time

BURSTS = 20
PER_BURST = 5


def test_numbered_lines() -> None:
    for burst in range(BURSTS):
        first = burst * PER_BURST + 1
        lines = [f"line {number:03d}" for number in range(first, first + PER_BURST)]
        print("\n".join(lines), flush=True)
        time.sleep(0.2)
