"""Browser sessions: a signed cookie that stands for an API key, and the CSRF token that goes
with it.

A user signs in to the dashboard with an API key once; the server answers with a cookie holding
the key's id, its user's id, an expiry and a random nonce, signed with HMAC-SHA256. The key
itself is never in the cookie, a URL or a page. Every request re-checks the key and the user in
the database (`ci_server.dependencies`), so revoking the key or deactivating the user ends its
sessions at once, and the expiry bounds a stolen cookie's life.

The signing secret is `CI_SESSION_SECRET` when set, else one generated into the database by its
migration: either way every server replica on the database shares it, so a cookie issued by one
replica is accepted by all. Changing it signs everyone out.

Forms and cookie-authenticated API calls that change state carry a CSRF token derived from the
session's nonce (HMAC, so it cannot be forged without the secret); the cookie is also
SameSite=Strict, so a cross-site page cannot send it at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from ci_common.models import ApiKeyId, UserId

SESSION_COOKIE = "ci_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class SessionClaims(BaseModel):
    """What a session cookie asserts, once its signature is checked."""

    model_config = ConfigDict(frozen=True)

    user_id: UserId
    key_id: ApiKeyId
    expires_at: int
    """Unix seconds after which the cookie is refused."""
    nonce: str
    """Random per sign-in: the CSRF token is derived from it."""


@dataclass(frozen=True)
class SessionSigner:
    """Issues and checks session cookies and their CSRF tokens with one secret."""

    secret: bytes
    lifetime_seconds: int

    def issue(self, *, user_id: UserId, key_id: ApiKeyId, now: float | None = None) -> str:
        claims = SessionClaims(
            user_id=user_id,
            key_id=key_id,
            expires_at=int((now or time.time()) + self.lifetime_seconds),
            nonce=secrets.token_urlsafe(16),
        )
        payload = _b64encode(claims.model_dump_json().encode())
        return f"{payload}.{self._sign(b'session:' + payload.encode())}"

    def verify(self, cookie: str, *, now: float | None = None) -> SessionClaims | None:
        """The claims of a cookie this secret signed and that has not expired, else None."""
        payload, _, signature = cookie.partition(".")
        expected = self._sign(b"session:" + payload.encode())
        if not signature or not hmac.compare_digest(signature, expected):
            return None
        try:
            claims = SessionClaims.model_validate(json.loads(_b64decode(payload)))
        except (ValueError, ValidationError, binascii.Error):
            return None
        if claims.expires_at <= (now or time.time()):
            return None
        return claims

    def csrf_token(self, claims: SessionClaims) -> str:
        return self._sign(b"csrf:" + claims.nonce.encode())

    def csrf_ok(self, claims: SessionClaims, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf_token(claims))

    def _sign(self, message: bytes) -> str:
        return _b64encode(hmac.new(self.secret, message, hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
