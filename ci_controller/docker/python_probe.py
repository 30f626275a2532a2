"""The exact Python in a job image, as the controller publishes it (`python_versions`).

Looked up in the image's metadata first, which costs one engine call: the label
`ci.python.version` that `scripts/build-job-image` sets, or the `PYTHON_VERSION` variable of the
official `python` images. Any other image is asked by a short-lived container without network
(~0.3 s), once per controller start.
"""

from __future__ import annotations

import asyncio
import re
from typing import cast

from ci_controller.docker.engine_api import ENGINE_ERRORS, EngineApi, Json, explain
from ci_controller.docker.labels import OwnerLabels
from ci_controller.docker.running import ContainerRunner, run_to_end
from ci_controller.runtime import ROLE_PROBE, RuntimeFault

PYTHON_VERSION_LABEL = "ci.python.version"
_PRINT_VERSION = "import platform; print(platform.python_version())"
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\S*")


async def python_in_image(
    api: EngineApi, *, image: str, owner: OwnerLabels, runner: ContainerRunner
) -> str:
    """`3.13.5` for `image` (present on the engine); `RuntimeFault` when it has no Python."""
    try:
        found = await asyncio.to_thread(api.inspect_image, image)
    except ENGINE_ERRORS as exc:
        raise RuntimeFault(f"cannot inspect the job image {image}: {explain(exc)}") from exc
    config = cast(Json, found.get("Config") or {})
    labels = cast(dict[str, str], config.get("Labels") or {})
    if _VERSION.fullmatch(labels.get(PYTHON_VERSION_LABEL, "")):
        return labels[PYTHON_VERSION_LABEL]
    for variable in cast(list[str], config.get("Env") or []):
        name, _, value = variable.partition("=")
        if name == "PYTHON_VERSION" and _VERSION.fullmatch(value):
            return value

    def create() -> str:
        try:
            created = api.create_container(
                image,
                command=["python", "-c", _PRINT_VERSION],
                user="",
                labels=owner.for_role(ROLE_PROBE),
                host_config=api.create_host_config(network_mode="none"),
            )
        except ENGINE_ERRORS as exc:
            raise RuntimeFault(f"cannot run the job image {image}: {explain(exc)}") from exc
        return str(created["Id"])

    status, output = await run_to_end(runner, await asyncio.to_thread(create))
    text = output.decode(errors="replace").strip()
    if status.exit_code != 0 or not _VERSION.fullmatch(text):
        raise RuntimeFault(
            f"the job image {image} has no working `python` (it printed {text[:200]!r}, exit "
            f"code {status.exit_code}); build it with scripts/build-job-image"
        )
    return text
