"""The HTTP API: submit projects, list and follow jobs. Build it with `create_app(settings)`."""

from ci_server.application import create_app
from ci_server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
