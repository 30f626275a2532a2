"""Templates of the dashboard: one Jinja2 environment, the filters pages share, and the
responses built from them.

Autoescaping is on for every template, so whatever a job carries (a project name, an error
message, a branch) is text, never markup. Times are rendered by the server relative to the
moment of the request ("3 min ago"); the live parts of a page are re-fetched, so they stay
current without any date handling in the browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/ui/static"


class Timed(Protocol):
    """What a duration is computed from (a `JobView`)."""

    @property
    def started_at(self) -> datetime | None: ...

    @property
    def finished_at(self) -> datetime | None: ...


def age(moment: datetime, now: datetime) -> str:
    """How long ago, in the largest unit that fits: `12 s ago`, `3 min ago`, `2 d ago`."""
    return f"{span(now - moment)} ago"


def span(delta: timedelta) -> str:
    """A length of time as people read it: `42 s`, `3 min 5 s`, `2 h 10 min`, `4 d`."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds < 600 else f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d"


def duration(job: Timed, now: datetime) -> str:
    """Running time: start to finish, or start to now while it runs; `—` before it starts."""
    if job.started_at is None:
        return "—"
    return span((job.finished_at or now) - job.started_at)


def _static_url(name: str) -> str:
    # The file's modification time busts caches when a new version of the server ships.
    mtime = int((STATIC_DIR / name).stat().st_mtime)
    return f"{STATIC_PREFIX}/{name}?v={mtime}"


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Jinja2 types its registries as unions of its own built-ins; ours are plain callables.
cast(dict[str, object], environment.filters).update(age=age, duration=duration)
cast(dict[str, object], environment.globals).update(static=_static_url)


def render(
    request: Request, template: str, *, status_code: int = 200, **context: object
) -> HTMLResponse:
    """A page (or a fragment of one) as HTML that no cache or other origin may keep or frame."""
    return render_with(request, template, context, status_code=status_code)


def render_with(
    request: Request, template: str, context: Mapping[str, object], *, status_code: int = 200
) -> HTMLResponse:
    """`render` with the template's variables in one mapping."""
    html = environment.get_template(template).render(
        {**context, "request": request, "now": datetime.now(UTC)}
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}
