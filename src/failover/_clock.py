"""Time, injected: breakers, backoff and deadlines read it from a :class:`Clock`.

The real clock reads ``time.monotonic`` and sleeps for real (unless test mode is on: see
:func:`failover.testing.set_testing`); :class:`VirtualClock` moves only when told to (or
when something sleeps on it), so state-machine tests and the simulator run in virtual time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock", "instant_sleeps", "set_instant_sleeps"]

# Test mode (failover.testing.set_testing): SystemClock's sleeps return at once. A module
# flag rather than a Router setting, so a test suite switches it once for every Router,
# including those its code under test builds.
_instant = False
_wall = time.time


def instant_sleeps() -> bool:
    """Whether :class:`SystemClock` sleeps return at once (test mode)."""
    return _instant


def set_instant_sleeps(on: bool) -> bool:
    """Make :class:`SystemClock` sleeps return at once (or not); the previous setting."""
    global _instant
    previous, _instant = _instant, bool(on)
    return previous


@runtime_checkable
class Clock(Protocol):
    """Where time comes from and how to wait for it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.sleep`` and ``asyncio.sleep``.

    In test mode (:func:`failover.testing.set_testing`) both sleeps return at once.
    """

    __slots__ = ()

    monotonic = staticmethod(time.monotonic)  # the hot path: no Python frame per reading
    time = staticmethod(_wall)  # Unix time, for the fallback cache's entry ages

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (not at all in test mode)."""
        if not _instant:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (in test mode: yield once)."""
        import asyncio  # not at module level: `import failover` stays light

        await asyncio.sleep(0 if _instant else seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """A clock that moves only when advanced or slept on; sleeping returns at once.

    Args:
        start: the initial :meth:`monotonic` reading.
        wall: the initial :meth:`time` reading (a Unix timestamp); it advances with the
            monotonic one, so the fallback cache's entry ages follow the virtual clock.
    """

    def __init__(self, start: float = 0.0, *, wall: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._lock = threading.Lock()
        self.slept: list[float] = []
        """Every sleep requested, in order (tests assert on backoff with it)."""

    def monotonic(self) -> float:
        """The current virtual time."""
        return self._now

    def time(self) -> float:
        """The current virtual wall time: ``wall`` plus the time advanced since the start."""
        return self._wall_offset + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by it, without blocking."""
        with self._lock:
            self.slept.append(seconds)
            self._now += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, yielding to the event loop once."""
        import asyncio

        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"
