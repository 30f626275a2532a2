"""The controller: runs queued jobs in containers and keeps the database and the engine in step.

`Controller(settings, runtime, repo)` is the reconciler; it talks to containers only through
the `ContainerRuntime` interface, which `DockerRuntime` implements on the Docker SDK.
"""

from ci_controller.controller import Controller
from ci_controller.docker_runtime import DockerRuntime
from ci_controller.runtime import ContainerRuntime, RuntimeFault
from ci_controller.singleton import ControllerAlreadyRunningError, ControllerLock

__all__ = [
    "ContainerRuntime",
    "Controller",
    "ControllerAlreadyRunningError",
    "ControllerLock",
    "DockerRuntime",
    "RuntimeFault",
]
