"""`GET /metrics` of the controller, on a port of its own (`CI_CONTROLLER_METRICS_PORT`).

The controller has no HTTP server otherwise, and wants none on its reconcile path: this is a
few lines of asyncio on the controller's own event loop (no thread, unlike prometheus_client's
server), so a scrape can read the queue's gauges from the repository the loop already holds.
One request per connection (`Connection: close`): a scraper asks every few seconds, not
thousands of times a second. Off unless a port is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from ci_common.errors import CIError
from ci_common.metrics import CONTENT_TYPE, UNAUTHORIZED_DETAIL, MetricsRepository, token_accepts
from ci_common.metrics import render as render_registry
from ci_controller.metrics import ControllerMetrics
from ci_controller.settings import ControllerSettings

logger = logging.getLogger(__name__)

HEAD_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024
_REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


class MetricsEndpointError(CIError):
    """The metrics port cannot be listened on (in use, not allowed)."""


@contextlib.asynccontextmanager
async def metrics_endpoint(
    *, host: str, port: int, token: str | None, render: Callable[[], Awaitable[bytes]]
) -> AsyncGenerator[int]:
    """Serve `/metrics` on `host:port` while the block runs; yields the port listened on (the
    one chosen when `port` is 0)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(
                reader.readuntil(b"\r\n\r\n"), timeout=HEAD_TIMEOUT_SECONDS
            )
            status, headers, body = await _answer(head, token=token, render=render)
            writer.write(_response(status, headers, body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # a client that sent no request head in time, or too much of one
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    try:
        server = await asyncio.start_server(handle, host, port, limit=MAX_HEAD_BYTES)
    except OSError as exc:
        raise MetricsEndpointError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); choose another "
            "port with CI_CONTROLLER_METRICS_PORT or --metrics-port"
        ) from exc
    bound = int(server.sockets[0].getsockname()[1])
    logger.info("metrics at http://%s:%d/metrics", host, bound)
    try:
        yield bound
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def serve_metrics(
    settings: ControllerSettings, metrics: ControllerMetrics, repo: MetricsRepository
) -> AsyncGenerator[int | None]:
    """`/metrics` on `CI_CONTROLLER_METRICS_PORT` while the block runs, yielding the port;
    nothing (None) when unset."""
    if settings.controller_metrics_port is None:
        yield None
        return

    async def render() -> bytes:
        await metrics.queue.refresh(repo)
        return render_registry(metrics.registry)

    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    async with metrics_endpoint(
        host=settings.controller_metrics_host,
        port=settings.controller_metrics_port,
        token=token,
        render=render,
    ) as port:
        yield port


async def _answer(
    head: bytes, *, token: str | None, render: Callable[[], Awaitable[bytes]]
) -> tuple[int, dict[str, str], bytes]:
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines if line)
    }
    if path != "/metrics":
        return _error(404, "not found; the controller serves only /metrics")
    if method not in ("GET", "HEAD"):
        return _error(405, "only GET /metrics")
    if not token_accepts(headers.get("authorization"), token):
        status, extra, body = _error(401, UNAUTHORIZED_DETAIL)
        return status, {**extra, "WWW-Authenticate": "Bearer"}, body
    body = await render()
    return 200, {"Content-Type": CONTENT_TYPE}, b"" if method == "HEAD" else body


def _error(status: int, detail: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps({"detail": detail}).encode()


def _response(status: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body
