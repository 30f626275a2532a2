"""The Docker adapter: everything that talks to a Docker engine, behind `ContainerRuntime`.

Only this package imports the Docker SDK, and only the controller's composition point
(`ci_controller.cli`) imports this package (an import-linter contract in pyproject.toml).
Inside it, `runtime.DockerRuntime` holds parts with one job each; read `runtime.py` first.
"""

from ci_controller.docker.runtime import DockerRuntime
from ci_controller.docker.sandboxes import check_memory_limit

__all__ = ["DockerRuntime", "check_memory_limit"]
