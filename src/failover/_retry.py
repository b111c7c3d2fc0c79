"""Backoff and the retry decision, as pure functions of the policy and one failure.

tenacity runs the loop (one ``Retrying``/``AsyncRetrying`` per call, built in
``_attempts``); these functions are its ``wait`` and ``stop`` and are what the tests
and the simulator check directly.
"""

from __future__ import annotations

from collections.abc import Callable

from ._failures import Failure
from .policy._model import BackoffPolicy, RetryPolicy

__all__ = ["backoff_delay", "retry_delay", "stop_reason"]


def backoff_delay(backoff: BackoffPolicy, retry: int, rand: Callable[[], float]) -> float:
    """Seconds to sleep before retry number ``retry`` (0 = the first retry).

    Exponential, capped at ``backoff.max``; ``full`` jitter draws uniformly from
    ``[0, cap)``, ``equal`` from ``[cap/2, cap)``, ``none`` sleeps exactly ``cap``.
    """
    # min() before the power would still overflow for large retry numbers; clamp first.
    exponent = min(retry, 64)
    cap = min(backoff.max, backoff.initial * backoff.multiplier**exponent)
    if backoff.jitter == "full":
        return cap * rand()
    if backoff.jitter == "equal":
        return cap / 2 + cap / 2 * rand()
    return cap


def retry_delay(
    policy: RetryPolicy, failure: Failure, retry: int, rand: Callable[[], float]
) -> float:
    """The wait before retry ``retry``: the server's ``retry-after`` if it gave one."""
    if failure.retry_after is not None:
        return failure.retry_after
    return backoff_delay(policy.backoff, retry, rand)


def stop_reason(
    policy: RetryPolicy, failure: Failure, tries: int, delay: float, remaining: float
) -> str | None:
    """Why not to retry the same endpoint now, or ``None`` to retry after ``delay``.

    Args:
        policy: the endpoint's retry settings.
        failure: the failure just seen.
        tries: requests already sent to this endpoint in this call.
        delay: the wait the next retry would need.
        remaining: seconds left before the route's deadline.
    """
    if not failure.retryable:
        return f"{failure.kind} is not retried"
    if tries >= policy.attempts:
        return f"{tries} of {policy.attempts} attempt(s) used"
    if failure.retry_after is not None and failure.retry_after > policy.max_retry_after:
        return (
            f"retry-after {failure.retry_after:.3g} s exceeds max_retry_after"
            f" {policy.max_retry_after:.3g} s"
        )
    if delay >= remaining:
        return f"a retry in {delay:.3g} s could not start before the deadline"
    return None
