"""Time in tests: a virtual clock, and a switch that makes real backoff sleeps instant.

Two seams, for two kinds of test:

- :class:`VirtualClock`: give it to ``Router(..., clock=VirtualClock())`` and the Router's
  breakers, backoff, deadlines and fallback cache all read it. Time moves only when the
  test says ``clock.advance(seconds)`` (or when the Router sleeps on it, which returns
  at once), so a breaker's ``reset_timeout`` or a cache entry's ``ttl`` pass in no time.
- :func:`set_testing` (as stamina's ``set_testing``): for code under test that builds its
  own Router on the real clock. While on, the real clock's backoff sleeps return at once;
  everything else (timeouts, breakers, deadlines) runs as in production.
"""

from __future__ import annotations

from types import TracebackType

from .._clock import VirtualClock, instant_sleeps, set_instant_sleeps

__all__ = ["VirtualClock", "is_testing", "set_testing"]


class _Restore:
    """What :func:`set_testing` returns: used as a context manager, it puts back the
    setting that was in force before the call."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        set_instant_sleeps(self._previous)


def set_testing(testing: bool) -> _Restore:
    """Turn test mode on or off for every Router in the process.

    In test mode the real clock's sleeps (the backoff before a retry, in ``complete``,
    ``acomplete`` and both streams) return at once, so a test that scripts
    ``529, 529, 200`` gets its answer without waiting out the backoff. The retries
    themselves, their count, the events and the deadline arithmetic are unchanged. A
    breaker's ``reset_timeout`` is not a sleep: to pass it in a test, build the Router
    with a :class:`VirtualClock` and ``advance`` it.

    Idempotent. Use it once for a whole suite (a session fixture), or as a context
    manager that restores the previous setting::

        with failover.testing.set_testing(True):
            router.complete(messages)

    Args:
        testing: whether sleeps return at once.
    """
    return _Restore(set_instant_sleeps(testing))


def is_testing() -> bool:
    """Whether test mode (instant backoff sleeps) is on."""
    return instant_sleeps()
