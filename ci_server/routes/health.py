"""`/health`: liveness and database readiness for load balancers and scripts; no authentication.

It answers 200 only when this process could write to the database within about a second, and
503 saying why otherwise (another process holding the write lock, a full disk, a database not
open yet), so a load balancer stops sending uploads to a server that would fail them.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ci_common.errors import StorageError
from ci_server.dependencies import RuntimeDep
from ci_server.errors import RETRY_AFTER_SECONDS

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unhealthy"] = Field(description="`ok` when every check passed")
    database: str = Field(description="`ok`, or why the database cannot take a write now")


@router.get(
    "/health",
    summary="Liveness and database check (no authentication)",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database cannot take writes"}},
)
async def health(runtime: RuntimeDep) -> Health | JSONResponse:
    try:
        if runtime.repo is None:
            raise StorageError("the server has not opened its database yet")
        await runtime.repo.check_writable()
    except StorageError as exc:
        body = Health(status="unhealthy", database=str(exc))
        return JSONResponse(
            body.model_dump(),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return Health(status="ok", database="ok")
