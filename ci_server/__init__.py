"""The HTTP API: FastAPI app, routers, upload validation and SSE log streaming."""
