"""Connecting to a Docker engine: two API clients, one for calls and one for streams.

Ordinary calls get a timeout; streams and waits get none, since they may stay quiet for as
long as a test does. The engine is the one `DOCKER_HOST` names, or the local socket; nothing
is bind-mounted, so a remote engine works the same as a local one.
"""

from __future__ import annotations

import os
from typing import cast

import docker

from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, engine_api
from ci_controller.runtime import RuntimeFault

API_TIMEOUT = 60


def connect_engine(docker_host: str | None = None) -> tuple[EngineApi, EngineApi]:
    """Two API clients (calls, streams) for the engine at `docker_host`, else the one
    `DOCKER_HOST` names (or the local socket); `RuntimeFault` with what to do when it does not
    answer."""
    environment = dict(os.environ)
    if docker_host:
        environment["DOCKER_HOST"] = docker_host
    try:
        calls = docker.from_env(version="auto", timeout=API_TIMEOUT, environment=environment).api
        # No read timeout for streams and waits. The SDK annotates `timeout` as int but hands
        # it to requests, where None means "wait as long as it takes".
        streams = docker.from_env(
            version="auto", timeout=cast(int, None), environment=environment
        ).api
    except ENGINE_ERRORS as exc:
        raise RuntimeFault(
            f"cannot reach the Docker engine ({exc}); start it with scripts/install-docker "
            "or set DOCKER_HOST"
        ) from exc
    return engine_api(calls), engine_api(streams)
