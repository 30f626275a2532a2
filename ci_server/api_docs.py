"""`/docs`: Swagger UI from files we serve, never from a CDN.

FastAPI's default `/docs` page loads Swagger UI's script and style from a CDN, so on a machine
without internet access it is blank. The `swagger-ui-bundle` package ships the same files;
they are mounted at `/docs/assets` and the page points there. ReDoc (also CDN-only) is off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # pyright: ignore[reportMissingTypeStubs]

ASSETS = "/docs/assets"


def install_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI at `/docs` with its assets from the `swagger-ui-bundle` package."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:  # pyright: ignore[reportUnusedFunction]
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
