"""`/engines` (admins only): the Docker engines sharing the queue, each with its capacity,
its running jobs and its controller's last heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, status

from ci_common.api import EngineView
from ci_server.dependencies import CurrentUser, RepoDep, SettingsDep
from ci_server.errors import ERROR_RESPONSES, error_response

router = APIRouter(
    tags=["engines"],
    responses={**ERROR_RESPONSES, 403: error_response("the caller is not an admin")},
)


@router.get("/engines", summary="Docker engines, their capacity and running jobs (admins)")
async def get_engines(user: CurrentUser, repo: RepoDep, settings: SettingsDep) -> list[EngineView]:
    """Every engine whose controller ever reported, by name; `alive` is false for one not seen
    within `CI_ENGINE_LOST_AFTER` seconds."""
    if not user.is_admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="only admins may list the engines; ask an admin to run "
            "`ci-admin user set-admin YOU`",
        )
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.engine_lost_after)
    return [
        EngineView.from_status(engine, alive=engine.last_seen >= cutoff)
        for engine in await repo.list_engines()
    ]
