"""One router per resource: submitting, jobs, health."""

from ci_server.routes import health, jobs, submit

__all__ = ["health", "jobs", "submit"]
