"""The controller: runs queued jobs in containers and keeps the database and the engine in step.

`Controller(settings, runtime, repo)` is the reconciler; it talks to containers only through
the `ContainerRuntime` interface, which `ci_controller.docker.DockerRuntime` implements on the
Docker SDK (imported only by the composition point, `cli`).
"""

from ci_controller.controller import Controller
from ci_controller.runtime import ContainerRuntime, RuntimeFault
from ci_controller.singleton import ControllerAlreadyRunningError, ControllerLock

__all__ = [
    "ContainerRuntime",
    "Controller",
    "ControllerAlreadyRunningError",
    "ControllerLock",
    "RuntimeFault",
]
