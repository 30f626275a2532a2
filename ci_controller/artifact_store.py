"""Taking a finished job's kept files out of its container into the database.

Runs as soon as the container's PID 1 said the files are gathered (`END_CHANNEL`), while
the container is still going down, so a copy overlaps its exit instead of following it (and
small files came in PID 1's output before that word, so there is nothing to copy at all);
else (PID 1 killed, a copy that failed mid-exit) once the container has exited and its output
is drained, whatever ended the job (a timed-out or cancelled job keeps what its tests had
written). The job is completed only after this, so no client ever sees a finished job
without its files, and a controller killed meanwhile adopts the job and collects them again.
The copy goes through a temporary file (the archive API's tar, cut off a little past the cap),
never memory; see `artifacts` for what PID 1 gathered before. A failure here never fails the
job: the log says what is missing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import tarfile
import tempfile
import time
from dataclasses import dataclass

from ci_common.errors import StorageError
from ci_common.models import Job
from ci_common.repository import ArtifactRepository
from ci_controller.artifacts import OUTPUT_DIR, Manifest, kept_files, notes
from ci_controller.runtime import ContainerRuntime, RuntimeFault

logger = logging.getLogger(__name__)

TAR_SLACK_BYTES = 1024 * 1024
"""Room for tar headers and the manifest beyond the cap."""
SPOOL_IN_MEMORY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Collected:
    """What `collect_artifacts` did: the log's lines about it, and whether the copy failed
    (the engine or the archive; a copy tried before the container exited may succeed after)."""

    notes: list[str]
    failed: bool = False


async def collect_artifacts(
    *,
    repo: ArtifactRepository,
    runtime: ContainerRuntime,
    job: Job,
    container_id: str,
    max_bytes: int,
    sent: bytes | None = None,
) -> Collected:
    """Store the files the job's container kept: the tar PID 1 `sent` in its output (base64,
    `artifacts.pack_output`), else a copy through the archive API. The result says what the
    log should add (the caller writes it after the job's output, in order)."""
    began = time.monotonic()
    limit = max_bytes + max_bytes // 10 + TAR_SLACK_BYTES
    manifest = Manifest()
    stored = 0
    try:
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY_BYTES) as spool:
            tar = _decoded(sent)
            if tar is not None:
                spool.write(tar[:limit])
            elif not await runtime.copy_out(
                container_id, f"/{OUTPUT_DIR}", into=spool, max_bytes=limit
            ):
                return Collected([])  # the project never arrived: nothing ran, nothing to keep
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r|") as archive:
                for kept in kept_files(archive, max_bytes=max_bytes, manifest=manifest):
                    await repo.store_artifact(
                        job.id, path=kept.path, size=kept.size, content=kept.content
                    )
                    stored += 1
    except (RuntimeFault, tarfile.TarError, OSError) as exc:
        logger.warning("job %s: artifacts not collected: %s", job.id, exc)
        note = f"the kept files (artifacts) could not be taken out of the container: {exc}"
        return Collected([note], failed=True)
    except StorageError:
        raise
    logger.info(
        "job %s: %d artifact(s) stored in %.0f ms", job.id, stored, (time.monotonic() - began) * 1e3
    )
    return Collected(notes(manifest, max_bytes=max_bytes))


def _decoded(sent: bytes | None) -> bytes | None:
    """The tar PID 1 sent, or None when it sent none (or garbled: then the copy decides)."""
    if not sent:
        return None
    try:
        return base64.b64decode(sent, validate=True)
    except binascii.Error:
        logger.warning("the kept files PID 1 sent are no base64; copying them out instead")
        return None
