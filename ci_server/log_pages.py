"""A stored log read a page at a time, the next page only once the reader wants it.

Every replay goes through here: `GET /jobs/{id}/logs`, an SSE stream from the beginning or
from `Last-Event-ID`, a follower catching up after a `Resync`, and the `LogHub` reading what
the controller just wrote. Each page is read from the database when the previous one has been
taken: a response generator is resumed only after uvicorn has handed the last page to the
socket, and uvicorn waits while the client is not reading (write flow control). So a client
that stops reading costs one encoded page, whatever the size of the log, and nothing builds a
whole log or queues pages ahead of the client.

Pages are bounded by bytes (`LOG_PAGE_BYTES` of chunk data, a larger chunk alone) rather than
rows, because chunks range from one short line to the controller's 256 KiB batches: a row
limit would make pages either tiny for the one or huge for the other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from ci_common.models import JobId, LogChunk
from ci_common.repository import JobRepository

LOG_PAGE_BYTES = 64 * 1024

Page = TypeVar("Page")


async def log_pages(
    repo: JobRepository,
    job_id: JobId,
    *,
    after_seq: int,
    encode: Callable[[Sequence[LogChunk]], Page],
    up_to: int | None = None,
) -> AsyncIterator[tuple[int, Page]]:
    """`(last seq, encode(chunks))` for each page of the chunks after `after_seq` (through
    `up_to` when given), in order, each chunk exactly once."""
    while up_to is None or after_seq < up_to:
        chunks = await repo.read_logs(job_id, after_seq=after_seq, max_bytes=LOG_PAGE_BYTES)
        if up_to is not None:
            chunks = [chunk for chunk in chunks if chunk.seq <= up_to]
        if not chunks:
            return
        after_seq, page = chunks[-1].seq, encode(chunks)
        del chunks  # while the reader waits, only the encoded page stays in memory
        yield after_seq, page


def log_text(chunks: Sequence[LogChunk]) -> bytes:
    """Chunks as the plain text they hold (for `/jobs/{id}/logs`)."""
    return "".join(chunk.data for chunk in chunks).encode()
