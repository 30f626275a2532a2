"""The labels that say whose a container, image or network is.

Every object the Docker runtime creates carries `ci.installation=<id>` (the installation's id,
stored in the database) and a role; a job's container also carries the job's id. What the
runtime lists it filters by these labels, so two installations sharing one engine never touch
each other's work.
"""

from __future__ import annotations

from dataclasses import dataclass

from ci_common.models import JobId
from ci_controller.runtime import LABEL_INSTALLATION, LABEL_JOB_ID, LABEL_ROLE


@dataclass(frozen=True)
class OwnerLabels:
    """The labels of one installation's objects on this engine."""

    installation_id: str

    def for_role(self, role: str, *, job_id: JobId | None = None) -> dict[str, str]:
        """The labels of a new object playing `role` (for `job_id`, when it has one)."""
        labels = {LABEL_INSTALLATION: self.installation_id, LABEL_ROLE: role}
        if job_id is not None:
            labels[LABEL_JOB_ID] = job_id
        return labels

    def selector(self) -> str:
        """The engine's `label` filter that finds this installation's objects."""
        return f"{LABEL_INSTALLATION}={self.installation_id}"
