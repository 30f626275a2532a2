"""Failed sign-ins: five a minute per client, then a wait until the oldest ages out."""

from __future__ import annotations

from ci_server.signin_throttle import SignInThrottle


def test_the_sixth_failure_within_a_minute_waits_for_the_first_to_age_out() -> None:
    throttle = SignInThrottle(max_failures=5, window_seconds=60)
    for second in range(5):
        assert throttle.retry_after("10.0.0.1", now=100.0 + second) is None
        throttle.record_failure("10.0.0.1", now=100.0 + second)
    assert throttle.retry_after("10.0.0.1", now=110.0) == 50
    assert throttle.retry_after("10.0.0.2", now=110.0) is None, "per client"
    assert throttle.retry_after("10.0.0.1", now=160.5) is None


def test_memory_is_bounded_by_the_clients_tracked() -> None:
    throttle = SignInThrottle(max_failures=1, window_seconds=60, max_clients=3)
    for client in range(10):
        throttle.record_failure(f"10.0.0.{client}", now=1.0)
    assert throttle.retry_after("10.0.0.9", now=2.0) is not None
    assert throttle.retry_after("10.0.0.0", now=2.0) is None, "the stalest was forgotten"
