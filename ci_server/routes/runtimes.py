"""`/runtimes`: the Python versions jobs can run on, as the controller published them."""

from __future__ import annotations

from fastapi import APIRouter

from ci_common.api import RuntimeView
from ci_server.dependencies import CurrentUser, RepoDep
from ci_server.errors import ERROR_RESPONSES

router = APIRouter(tags=["runtimes"], responses=ERROR_RESPONSES)


@router.get("/runtimes", summary="Python versions offered, oldest first")
async def get_runtimes(_user: CurrentUser, repo: RepoDep) -> list[RuntimeView]:
    """Empty until a controller has started: a job then runs on the controller's default."""
    return [
        RuntimeView(
            version=runtime.version,
            python=runtime.python,
            image=runtime.image,
            default=runtime.default,
        )
        for runtime in await repo.list_runtimes()
    ]
