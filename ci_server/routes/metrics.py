"""`/metrics`: Prometheus' text format, protected by `CI_METRICS_TOKEN` when it is set.

Not behind API keys: a scraper is no user. The queue's gauges are read from the database at
each scrape, so every replica reports the same queue; followers are this process's own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from ci_common.errors import AuthenticationError
from ci_common.metrics import CONTENT_TYPE, UNAUTHORIZED_DETAIL, render, token_accepts
from ci_server.dependencies import RepoDep, RuntimeDep, SettingsDep
from ci_server.errors import error_response

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (Bearer CI_METRICS_TOKEN when set)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"},
        401: error_response("CI_METRICS_TOKEN is set and the request did not carry it"),
    },
)
async def metrics(
    runtime: RuntimeDep,
    settings: SettingsDep,
    repo: RepoDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not token_accepts(authorization, token):
        raise AuthenticationError(UNAUTHORIZED_DETAIL)
    server_metrics = runtime.metrics
    await server_metrics.queue.refresh(repo)
    server_metrics.sse_followers.set(runtime.hub.followers if runtime.hub is not None else 0)
    return Response(render(server_metrics.registry), media_type=CONTENT_TYPE)
