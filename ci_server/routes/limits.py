"""`/limits`: what this server accepts, so a client can check an upload before sending it."""

from __future__ import annotations

from fastapi import APIRouter

from ci_common import job_options
from ci_common.api import Limits
from ci_server.dependencies import CurrentUser, SettingsDep
from ci_server.errors import ERROR_RESPONSES

router = APIRouter(tags=["limits"], responses=ERROR_RESPONSES)


@router.get("/limits", summary="Upload, pytest-argument and environment limits")
async def get_limits(_user: CurrentUser, settings: SettingsDep) -> Limits:
    return Limits(
        max_upload_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        max_upload_entries=settings.max_upload_entries,
        max_pytest_args=job_options.MAX_PYTEST_ARGS,
        max_pytest_arg_bytes=job_options.MAX_PYTEST_ARG_BYTES,
        max_pytest_args_bytes=job_options.MAX_PYTEST_ARGS_BYTES,
        max_env_vars=job_options.MAX_ENV_VARS,
        max_env_value_bytes=job_options.MAX_ENV_VALUE_BYTES,
        max_env_bytes=job_options.MAX_ENV_BYTES,
        env_name_pattern=job_options.ENV_NAME_PATTERN,
        reserved_env_names=list(job_options.RESERVED_ENV_NAMES),
    )
