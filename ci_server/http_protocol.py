"""uvicorn's h11 protocol with deadlines for connections that are not being served.

Stock uvicorn arms its keep-alive timer only after a response, cancels it on any byte received
and arms nothing at all for a new connection: a client that sends a request head one byte at a
time, or never sends one, holds a connection (and a slot of `limit_concurrency`) for as long as
it likes, so a thousand of them lock everyone else out. Here:

- a connection has `timeout_keep_alive` seconds to complete a request head, when it opens as
  between requests, and bytes that trickle in do not restart the clock;
- a request answered before its body arrived (an upload refused with 401, 503 or 413) has
  `linger_seconds` for the rest of that body, which uvicorn reads and throws away: most clients
  read the response only after sending the whole body, and closing on an unread body makes the
  kernel reset the connection and lose the response. Then the usual keep-alive wait follows;
- while a request is being served there is no deadline here: an upload's body is bounded by
  `CI_UPLOAD_TIMEOUT`, a log stream by the client's own pace.

`ci-server` runs uvicorn with this protocol (`--http ci_server.http_protocol:H11Protocol` does
the same for `python -m uvicorn`).
"""

from __future__ import annotations

import asyncio
from typing import cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as UvicornH11Protocol
from uvicorn.protocols.http.h11_impl import RequestResponseCycle


class H11Protocol(UvicornH11Protocol):
    """Closes connections that are slow to send a request head, or the rest of a body after
    the response, instead of waiting for them forever."""

    linger_seconds: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm(self.timeout_keep_alive)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms the keep-alive timer, unless closing
        if self.timeout_keep_alive_task is not None and self._discarding():
            self._arm(self.linger_seconds)

    def data_received(self, data: bytes) -> None:
        # uvicorn cancels the timer on every byte received; here only a request head does.
        pending, self.timeout_keep_alive_task = self.timeout_keep_alive_task, None
        was_discarding = self._discarding()
        super().data_received(data)
        if self._serving() or self.timeout_keep_alive_task is not None:
            # A request head arrived, or uvicorn armed a fresh timer of its own.
            if pending is not None:
                pending.cancel()
        elif was_discarding and not self._discarding():
            # The unwanted body is in: now the usual wait for the next request.
            if pending is not None:
                pending.cancel()
            self._arm(self.timeout_keep_alive)
        else:
            self.timeout_keep_alive_task = pending

    def _serving(self) -> bool:
        # uvicorn types it as always set, but it is None until the first request head.
        cycle = cast("RequestResponseCycle | None", self.cycle)
        return cycle is not None and not cycle.response_complete

    def _discarding(self) -> bool:
        """Answered already, but the request's body is still coming."""
        return not self._serving() and self.conn.their_state is h11.SEND_BODY

    def _arm(self, seconds: float) -> None:
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            seconds, self.timeout_keep_alive_handler
        )
