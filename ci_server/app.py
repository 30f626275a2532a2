"""The app uvicorn serves: `python -m uvicorn ci_server.app:app --port 8000`.

Built from the environment (`CI_DB_PATH`, limits) at import; the database is opened only when
the app starts (its lifespan), so importing this module touches no files.
"""

from ci_server.application import create_app
from ci_server.settings import ServerSettings

# Every field has a default, read from CI_* env vars; pyright cannot see the positional
# `Field(default, ...)` defaults of the shared Settings.
app = create_app(ServerSettings())
