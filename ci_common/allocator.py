"""Keeping freed memory for reuse rather than handing it back to the kernel at once.

glibc's malloc gives a block of 128 KiB or more fresh pages of its own (`M_MMAP_THRESHOLD`,
raised as such blocks are freed), and hands the free top of its heap back to the kernel once
that passes `M_TRIM_THRESHOLD` (twice the other). Streaming a verbose log, a server makes and
drops several such buffers per 256 KiB chunk (the row's text, its JSON, the SSE message), so
every chunk had its pages faulted in and zeroed anew: under an 18 MB log, about half of the
server's CPU was the kernel mapping pages, CPU the job, Docker and the controller were short
of, and the followers' p99 latency was ~220 ms against ~155 ms without it
(`bench/log_throughput.py`).

`keep_freed_memory()` sets both: a block under `MMAP_THRESHOLD_BYTES` comes from the heap,
and up to `TRIM_THRESHOLD_BYTES` of free heap stays with the process for the next one. The
memory a process holds still does not grow with the size of a log: only the largest of those
buffers is kept, not the sum of them. (The same as `MALLOC_MMAP_THRESHOLD_` and
`MALLOC_TRIM_THRESHOLD_` in the environment, which only whoever starts the process can set.)
Where the C library has no `mallopt` (not glibc), it does nothing.
"""

from __future__ import annotations

import ctypes

MMAP_THRESHOLD_BYTES = 1024 * 1024
TRIM_THRESHOLD_BYTES = 4 * 1024 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
"""`mallopt` parameters, from glibc's `malloc.h`."""


def keep_freed_memory() -> bool:
    """Whether the C library took the settings (see the module's doc)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
