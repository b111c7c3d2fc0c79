"""Backoff math and the retry decision: pure functions, checked directly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from failover._failures import Failure, failure_from_status, parse_retry_after
from failover._retry import backoff_delay, retry_delay, stop_reason
from failover.policy._model import BackoffPolicy, RetryPolicy


def policy(attempts: int = 3, jitter: str = "full", max_retry_after: float = 10.0) -> RetryPolicy:
    return RetryPolicy(
        attempts=attempts,
        backoff=BackoffPolicy(initial=0.25, max=4.0, multiplier=2.0, jitter=jitter),
        max_retry_after=max_retry_after,
    )


def test_exponential_without_jitter() -> None:
    """jitter none doubles from initial up to max."""
    backoff = policy(jitter="none").backoff
    assert [backoff_delay(backoff, n, lambda: 0.5) for n in range(7)] == [
        0.25,
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
        4.0,
    ]


@given(
    retry=st.integers(0, 10_000),
    rand=st.floats(0, 1, exclude_max=True),
    jitter=st.sampled_from(["full", "equal", "none"]),
)
def test_backoff_never_exceeds_max(retry: int, rand: float, jitter: str) -> None:
    """Whatever the retry number and jitter draw, the delay stays within [0, max]."""
    delay = backoff_delay(policy(jitter=jitter).backoff, retry, lambda: rand)
    assert 0 <= delay <= 4.0


def test_full_jitter_spans_zero_to_cap() -> None:
    """Full jitter scales the capped delay by the random draw."""
    backoff = policy().backoff
    assert backoff_delay(backoff, 2, lambda: 0.0) == 0.0
    assert backoff_delay(backoff, 2, lambda: 0.5) == 0.5


def test_retry_after_replaces_backoff() -> None:
    """A server's retry-after is the wait, not the backoff."""
    failure = Failure("rate_limited", 429, retry_after=1.5)
    assert retry_delay(policy(), failure, 0, lambda: 0.0) == 1.5


def test_stop_reasons() -> None:
    """Each reason to stop retrying the same endpoint, and the case that retries."""
    overloaded = Failure("overloaded", 529)
    assert stop_reason(policy(), overloaded, 1, 0.2, 10.0) is None
    assert "attempt" in (stop_reason(policy(), overloaded, 3, 0.2, 10.0) or "")
    assert "not retried" in (stop_reason(policy(), Failure("auth", 401), 1, 0.2, 10.0) or "")
    too_long = Failure("rate_limited", 429, retry_after=30.0)
    assert "max_retry_after" in (stop_reason(policy(), too_long, 1, 30.0, 100.0) or "")
    assert "deadline" in (stop_reason(policy(), overloaded, 1, 2.0, 1.9) or "")


def test_status_table() -> None:
    """HTTP statuses map to the contract's failure table: (retry, stop the route, breaker)."""
    expect = {
        408: (True, False, True),
        429: (True, False, True),
        500: (True, False, True),
        502: (True, False, True),
        503: (True, False, True),
        504: (True, False, True),
        529: (True, False, True),
        401: (False, False, True),
        403: (False, False, True),
        404: (False, False, True),
        400: (False, True, False),
        413: (False, False, False),  # too long for this model: the next may take it
        422: (False, True, False),
    }
    for status, (retryable, request_error, counts) in expect.items():
        failure = failure_from_status(status)
        assert failure.retryable is retryable, status
        assert failure.is_request_error is request_error, status
        assert failure.counts_against_breaker is counts, status


def test_retry_after_headers() -> None:
    """retry-after-ms wins over retry-after; seconds and HTTP dates both parse."""
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "garbage"}) is None
    when = parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0)
    assert when == 10.0
    assert parse_retry_after({}) is None
