"""Session cookies and CSRF tokens: only this secret's, unexpired, untampered cookies pass."""

from __future__ import annotations

from ci_common.models import ApiKeyId, UserId
from ci_server.sessions import SessionSigner

SIGNER = SessionSigner(secret=b"s" * 32, lifetime_seconds=3600)


def test_a_cookie_round_trips_until_it_expires() -> None:
    cookie = SIGNER.issue(user_id=UserId("user-7"), key_id=ApiKeyId("key-3"), now=1000.0)
    claims = SIGNER.verify(cookie, now=1000.0 + 3599)
    assert claims is not None
    assert (claims.user_id, claims.key_id, claims.expires_at) == ("user-7", "key-3", 4600)
    assert SIGNER.verify(cookie, now=4600.0) is None


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    cookie = SIGNER.issue(user_id=UserId("user-7"), key_id=ApiKeyId("key-3"))
    payload, _, signature = cookie.partition(".")
    forged_payload = SIGNER.issue(user_id=UserId("user-1"), key_id=ApiKeyId("key-1")).partition(
        "."
    )[0]
    other = SessionSigner(secret=b"t" * 32, lifetime_seconds=3600)
    for bad in (
        f"{forged_payload}.{signature}",
        f"{payload}.",
        payload,
        "",
        "not.base64!",
        other.issue(user_id=UserId("user-7"), key_id=ApiKeyId("key-3")),
    ):
        assert SIGNER.verify(bad) is None, bad


def test_the_csrf_token_belongs_to_one_session() -> None:
    one = SIGNER.verify(SIGNER.issue(user_id=UserId("user-7"), key_id=ApiKeyId("key-3")))
    two = SIGNER.verify(SIGNER.issue(user_id=UserId("user-7"), key_id=ApiKeyId("key-3")))
    assert one is not None and two is not None
    assert SIGNER.csrf_ok(one, SIGNER.csrf_token(one))
    assert not SIGNER.csrf_ok(one, SIGNER.csrf_token(two))
    assert not SIGNER.csrf_ok(one, None)
    assert not SIGNER.csrf_ok(one, "")
