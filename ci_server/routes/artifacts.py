"""`/jobs/{id}/artifacts`: the files a job kept (its `junit.xml` and the user's patterns).

A download streams the stored blocks one query at a time, each read once the client has
taken the one before, so a large file never sits whole in a server's memory and a client
that stops reading costs one block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse

from ci_common.api import ArtifactView
from ci_common.errors import ArtifactNotFoundError
from ci_common.models import Artifact
from ci_common.repository import ArtifactRepository
from ci_server.dependencies import OwnedJob, RepoDep
from ci_server.errors import ERROR_RESPONSES

router = APIRouter(prefix="/jobs", tags=["artifacts"], responses=ERROR_RESPONSES)


@router.get("/{job_id}/artifacts", summary="The files a job kept, by path")
async def list_artifacts(job: OwnedJob, repo: RepoDep) -> list[ArtifactView]:
    """`junit.xml` (pytest's report of every job that ran) and the files matching the
    submit's `artifacts` patterns, collected after pytest exited. Empty while it runs."""
    return [
        ArtifactView(path=item.path, size=item.size) for item in await repo.list_artifacts(job.id)
    ]


@router.get(
    "/{job_id}/artifacts/{path:path}",
    summary="Download one kept file",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
async def download_artifact(
    job: OwnedJob,
    repo: RepoDep,
    path: Annotated[str, Path(description="as the list gives it, e.g. `htmlcov/index.html`")],
) -> StreamingResponse:
    artifact = await repo.get_artifact(job.id, path)
    if artifact is None:
        raise ArtifactNotFoundError(job.id, path)
    name = path.rsplit("/", 1)[-1]
    return StreamingResponse(
        _blocks(repo, artifact),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(artifact.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        },
    )


async def _blocks(repo: ArtifactRepository, artifact: Artifact) -> AsyncIterator[bytes]:
    index = 0
    while (
        block := await repo.read_artifact_block(artifact.job_id, artifact.path, index)
    ) is not None:
        yield block
        index += 1
