"""The labels that say whose a container, image or network is.

Every object the Docker runtime creates carries `ci.installation=<id>` (the installation's id,
stored in the database), `ci.engine=<name>` (the controller's engine) and a role; a job's
container also carries the job's id. What the runtime lists it filters by these labels, so two
installations, or two engine names, sharing one engine never touch each other's work. An
object without the engine label predates engines and belongs to the default one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ci_common.models import DEFAULT_ENGINE, JobId
from ci_controller.runtime import LABEL_ENGINE, LABEL_INSTALLATION, LABEL_JOB_ID, LABEL_ROLE


@dataclass(frozen=True)
class OwnerLabels:
    """The labels of one installation's objects on one engine."""

    installation_id: str
    engine: str = DEFAULT_ENGINE

    def for_role(self, role: str, *, job_id: JobId | None = None) -> dict[str, str]:
        """The labels of a new object playing `role` (for `job_id`, when it has one)."""
        labels = {LABEL_INSTALLATION: self.installation_id, LABEL_ENGINE: self.engine}
        labels[LABEL_ROLE] = role
        if job_id is not None:
            labels[LABEL_JOB_ID] = job_id
        return labels

    def selector(self) -> str:
        """The engine's `label` filter that finds this installation's objects."""
        return f"{LABEL_INSTALLATION}={self.installation_id}"

    def owns(self, labels: Mapping[str, str]) -> bool:
        """Whether an object of this installation (see `selector`) is this engine's."""
        return labels.get(LABEL_ENGINE, DEFAULT_ENGINE) == self.engine
