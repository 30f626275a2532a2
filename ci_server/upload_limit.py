"""A cap on request bodies, enforced while they arrive rather than after they are spooled.

The multipart parser writes an upload to a temporary file as it reads it, so the archive size
limit must also act one level lower: a `Content-Length` over the cap is refused before a byte
is read, and a body that grows past it (chunked, or a lying length) is cut off mid-stream. The
endpoint still checks the exact archive size; this cap allows for the few bytes of multipart
framing around it.

Refusing does not close the connection: most clients read the response only once they have
sent the whole body, and a server that closes with the body unread makes the kernel reset the
connection, losing the response. uvicorn throws the rest of the body away instead, and
`ci_server.http_protocol` bounds how long that may take.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPART_OVERHEAD_BYTES = 64 * 1024


class RequestSizeLimit:
    """ASGI middleware: 413 with a JSON `detail` for any body over `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, detail: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = detail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the form parser; FastAPI re-raises HTTPException as is.
                    raise HTTPException(status_code=413, detail=self.detail)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self.detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
