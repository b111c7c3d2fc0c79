"""What to do after a failure, as pure functions of the policy, the failure and the time.

:func:`decide` is the one place that chooses between retrying the same endpoint, failing
over to the next and stopping the route; the router's call loop (sync, async, streams)
and ``failover simulate`` all call it, so they cannot disagree. :class:`RetryBudget`
caps retries at a share of an endpoint's recent calls (Finagle's and Envoy's retry
budget), so an outage never multiplies the load on a struggling provider.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from . import _fork

if TYPE_CHECKING:  # _failures imports email.utils: keep it out of `import failover`
    from ._failures import Failure

__all__ = [
    "Decision",
    "RetryBudget",
    "backoff_delay",
    "decide",
    "retry_delay",
    "stop_reason",
]

Action = Literal["retry", "fail over", "stop"]

# Failures that mean "no answer in time": with another endpoint left, these fail over
# before the same endpoint is retried (a silent endpoint must not eat the budget).
TIMEOUTS: Final = frozenset({"timeout", "first_token", "stream_idle", "deadline"})


class Decision(NamedTuple):
    """What to do after a failed attempt, and why (for logs)."""

    action: Action
    delay: float
    reason: str


def decide(
    policy: Any,
    failure: Failure,
    tries: int,
    delay: float,
    *,
    left: float,
    route_left: float,
    others: bool,
    budget: RetryBudget | None = None,
    now: float = 0.0,
) -> Decision:
    """Retry the same endpoint after ``delay``, fail over, or stop the route.

    Args:
        policy: the endpoint's retry settings (``RetryPolicy``).
        failure: the failure just seen.
        tries: requests already sent to this endpoint in this call.
        delay: the wait the next retry would need.
        left: seconds left of this endpoint's share of the deadline.
        route_left: seconds left before the route's deadline.
        others: whether another endpoint of the route is still to be tried.
        budget: the endpoint's retry budget; a retry takes one token from it.
        now: the clock reading, for the budget's window.
    """
    if failure.is_request_error:
        return Decision("stop", 0.0, "the request was rejected")
    if route_left <= 0.001:
        return Decision("stop", 0.0, "deadline reached")
    reason = stop_reason(policy, failure, tries, delay, left)
    if reason is not None:
        return Decision("fail over", 0.0, reason)
    if others and failure.kind in TIMEOUTS:
        return Decision("fail over", 0.0, f"{failure.kind}; another endpoint is available")
    if budget is not None and not budget.spend(now):
        return Decision("fail over", 0.0, "retry budget spent")
    return Decision("retry", delay, failure.kind)


class RetryBudget:
    """Retries allowed per ``window``: ``min_retries`` plus ``ratio`` of the calls made.

    Each call's first request is counted with :meth:`called`; each retry must
    :meth:`spend` a token. Counts are kept in a few time buckets, so memory stays
    bounded whatever the call rate. Thread-safe.
    """

    __slots__ = (
        "__weakref__",
        "_buckets",
        "_lock",
        "_width",
        "calls",
        "min_retries",
        "ratio",
        "retries",
    )

    _SLOTS: Final = 10

    def __init__(self, ratio: float = 0.2, min_retries: int = 10, window: float = 10.0) -> None:
        self.ratio = ratio
        self.min_retries = min_retries
        self._width = window / self._SLOTS
        self._buckets: deque[list[float]] = deque()  # [start, calls, retries]
        self._lock = threading.Lock()
        self.calls = 0
        self.retries = 0
        _fork.register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def of(cls, policy: Any) -> RetryBudget | None:
        """The budget a ``RetryPolicy`` asks for (``None`` when it sets none)."""
        settings = getattr(policy, "budget", None)
        if settings is None:
            return None
        return cls(settings.ratio, settings.min_retries, settings.window)

    def _bucket(self, now: float) -> list[float]:
        horizon = now - self._width * self._SLOTS
        buckets = self._buckets
        while buckets and buckets[0][0] + self._width <= horizon:
            _, calls, retries = buckets.popleft()
            self.calls -= int(calls)
            self.retries -= int(retries)
        if not buckets or now >= buckets[-1][0] + self._width:
            buckets.append([now, 0, 0])
        return buckets[-1]

    def called(self, now: float) -> None:
        """Count one call (its first request)."""
        buckets = self._buckets
        if buckets and now < buckets[-1][0] + self._width:
            # The hot path, without the lock: a count lost to a race only errs towards
            # fewer retries.
            buckets[-1][1] += 1
            self.calls += 1
            return
        with self._lock:
            self._bucket(now)[1] += 1
            self.calls += 1

    def spend(self, now: float) -> bool:
        """Take a token for one retry; False when the budget is spent."""
        with self._lock:
            bucket = self._bucket(now)
            if self.retries >= self.min_retries + self.ratio * self.calls:
                return False
            bucket[2] += 1
            self.retries += 1
            return True


def backoff_delay(backoff: Any, retry: int, rand: Callable[[], float]) -> float:
    """Seconds to sleep before retry number ``retry`` (0 = the first retry).

    Exponential, capped at ``backoff.max``; ``full`` jitter draws uniformly from
    ``[0, cap)``, ``equal`` from ``[cap/2, cap)``, ``none`` sleeps exactly ``cap``.
    """
    # min() before the power would still overflow for large retry numbers; clamp first.
    exponent = min(retry, 64)
    cap = float(min(backoff.max, backoff.initial * backoff.multiplier**exponent))
    if backoff.jitter == "full":
        return cap * rand()
    if backoff.jitter == "equal":
        return cap / 2 + cap / 2 * rand()
    return cap


def retry_delay(policy: Any, failure: Failure, retry: int, rand: Callable[[], float]) -> float:
    """The wait before retry ``retry``: the server's ``retry-after`` if it gave one."""
    if failure.retry_after is not None:
        return failure.retry_after
    return backoff_delay(policy.backoff, retry, rand)


def stop_reason(
    policy: Any, failure: Failure, tries: int, delay: float, remaining: float
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
