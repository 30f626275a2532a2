"""`/whoami`: who the key belongs to, so a client can check its key before packing a project."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ci_server.dependencies import CurrentUser
from ci_server.errors import ERROR_RESPONSES

router = APIRouter(tags=["whoami"], responses=ERROR_RESPONSES)


class WhoAmI(BaseModel):
    """The caller: the user the API key belongs to."""

    id: str
    name: str
    email: str


@router.get("/whoami", summary="The user your API key belongs to")
async def whoami(user: CurrentUser) -> WhoAmI:
    return WhoAmI(id=user.id, name=user.name, email=user.email)
