"""`/health`: liveness for load balancers and scripts; no authentication."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = Field(description="always `ok` while the process serves requests")


@router.get("/health", summary="Liveness check (no authentication)")
async def health() -> Health:
    return Health(status="ok")
