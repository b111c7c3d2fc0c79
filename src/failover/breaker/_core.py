"""The breaker's state machine as plain data and arithmetic, with no locks and no I/O.

The memory store runs it under a lock; the Redis store runs the same rules in Lua; the
simulator runs it in virtual time. Semantics follow resilience4j:

- closed → open after ``failure_threshold`` consecutive failures, or when the failure
  ratio over the sliding ``window`` reaches ``failure_rate`` once the window holds
  ``minimum_calls`` calls;
- open → half_open once ``reset_timeout`` has passed (checked when a call asks);
- half_open hands out ``half_open_max_calls`` trial permits in all; it closes once that
  many trials succeeded and reopens, for a full ``reset_timeout``, on any failed trial.

Every transition bumps ``generation``. A permit remembers the generation it was taken in,
and an outcome from an older generation is ignored: a call that started before the
breaker opened cannot count against the half-open trials that came after.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

__all__ = [
    "DEFAULT_TRIAL_LEASE",
    "Admission",
    "BreakerCore",
    "BreakerSettings",
    "BreakerSnapshot",
    "State",
    "Transition",
]

State = Literal["closed", "open", "half_open"]

# Trial permits taken and never returned (a crashed process, a lost connection) are taken
# back after this long: the half-open breaker then reopens as if a trial had failed.
DEFAULT_TRIAL_LEASE = 300.0

# The failure-rate window is kept as this many buckets at most, so memory stays bounded
# whatever the call rate (resilience4j's time-based window does the same per second).
_BUCKETS = 20


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """The settings that define a breaker's state machine, as plain data.

    The policy's ``BreakerPolicy`` has the same fields; :meth:`of` copies any object that
    has them, so this module needs no policy (or pydantic) import.
    """

    failure_threshold: int = 5
    failure_rate: float | None = None
    minimum_calls: int = 20
    window: float = 60.0
    slow_call: float | None = None
    reset_timeout: float = 30.0
    half_open_max_calls: int = 1

    @classmethod
    def of(cls, source: Any) -> BreakerSettings:
        """The settings of ``source`` (a ``BreakerPolicy`` or this class)."""
        if isinstance(source, cls):
            return source
        return cls(
            failure_threshold=source.failure_threshold,
            failure_rate=source.failure_rate,
            minimum_calls=source.minimum_calls,
            window=source.window,
            slow_call=source.slow_call,
            reset_timeout=source.reset_timeout,
            half_open_max_calls=source.half_open_max_calls,
        )


class Transition(NamedTuple):
    """A change of state, with the reason in words."""

    old: State
    new: State
    reason: str


class Admission(NamedTuple):
    """The answer to "may this call go through?"."""

    admitted: bool
    trial: bool
    generation: int
    transition: Transition | None


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker's state at one moment, for ``status()``.

    Attributes:
        state: ``"closed"``, ``"open"`` or ``"half_open"``.
        consecutive_failures: failures since the last success (closed state).
        window_calls: calls in the failure-rate window.
        window_failures: failures among them.
        opened_at: clock reading when it last opened, ``None`` if never.
        retry_at: clock reading from which an open breaker admits a trial.
        trials_in_flight: half-open trial calls under way.
        total_successes: successes recorded since the breaker was made.
        total_failures: failures recorded since the breaker was made.
    """

    state: State
    consecutive_failures: int
    window_calls: int
    window_failures: int
    opened_at: float | None
    retry_at: float | None
    trials_in_flight: int
    total_successes: int
    total_failures: int


class _Window:
    """Calls and failures over the last ``span`` seconds, in a bounded number of buckets."""

    __slots__ = ("_buckets", "_width", "calls", "failures")

    def __init__(self, span: float) -> None:
        self._width = span / _BUCKETS
        self._buckets: deque[list[float]] = deque()  # [start, calls, failures]
        self.calls = 0
        self.failures = 0

    def add(self, now: float, failed: bool) -> None:
        buckets = self._buckets
        if not buckets or now >= buckets[-1][0] + self._width:
            # Old buckets can only have aged out once time has left the newest one.
            self._expire(now)
            buckets.append([now, 0, 0])
        bucket = buckets[-1]
        bucket[1] += 1
        self.calls += 1
        if failed:
            bucket[2] += 1
            self.failures += 1

    def _expire(self, now: float) -> None:
        horizon = now - self._width * _BUCKETS
        while self._buckets and self._buckets[0][0] + self._width <= horizon:
            _, calls, failures = self._buckets.popleft()
            self.calls -= int(calls)
            self.failures -= int(failures)

    def clear(self) -> None:
        self._buckets.clear()
        self.calls = 0
        self.failures = 0


class BreakerCore:
    """The state machine. Not thread-safe: its store serializes access.

    Args:
        policy: the breaker settings (a ``BreakerPolicy`` or :class:`BreakerSettings`).
        lease: seconds after which half-open trial permits that were never returned are
            taken back (the breaker reopens, as if a trial had failed).
    """

    def __init__(self, policy: Any, lease: float = DEFAULT_TRIAL_LEASE) -> None:
        self.policy = BreakerSettings.of(policy)
        self.lease = lease
        self.changed_at = 0.0
        self.state: State = "closed"
        self.generation = 0
        # A closed breaker's answer to every call, made once per generation (_move).
        self.closed_admission = Admission(True, False, 0, None)
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.trials_in_flight = 0
        self.trial_successes = 0
        self.total_successes = 0
        self.total_failures = 0
        self._window = _Window(policy.window)

    def acquire(self, now: float) -> Admission:
        """Decide whether a call may go out now, taking a trial permit when half-open."""
        if self.state == "closed":
            return self.closed_admission
        transition = None
        if self.state == "open":
            assert self.opened_at is not None
            if now < self.opened_at + self.policy.reset_timeout:
                return Admission(False, False, self.generation, None)
            transition = self._move("half_open", now, "reset timeout elapsed")
        if self.trials_in_flight + self.trial_successes >= self.policy.half_open_max_calls:
            if self.trials_in_flight > 0 and now >= self.changed_at + self.lease:
                lost = self.trials_in_flight
                reason = f"{lost} trial permit(s) not returned within {self.lease:g} s"
                transition = self._move("open", now, reason)
            return Admission(False, False, self.generation, transition)
        self.trials_in_flight += 1
        return Admission(True, True, self.generation, transition)

    def record(self, now: float, generation: int, trial: bool, failed: bool) -> Transition | None:
        """Record an outcome; return the transition it caused, if any."""
        if failed:
            self.total_failures += 1
        else:
            self.total_successes += 1
        if generation != self.generation:
            return None  # taken before the last transition: it no longer speaks for now
        if trial:
            self.trials_in_flight -= 1
            if failed:
                return self._move("open", now, "a half-open trial failed")
            self.trial_successes += 1
            if self.trial_successes >= self.policy.half_open_max_calls:
                return self._move("closed", now, f"{self.trial_successes} trial(s) succeeded")
            return None
        if self.state != "closed":
            return None
        self._window.add(now, failed)
        if not failed:
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.policy.failure_threshold:
                return self._move("open", now, f"{self.consecutive_failures} consecutive failures")
        # Like resilience4j, the ratio is checked after every call, a success included:
        # the call that brings the window to minimum_calls may be the one that trips it.
        rate = self.policy.failure_rate
        window = self._window
        if (
            rate is not None
            and window.calls >= self.policy.minimum_calls
            and window.failures >= rate * window.calls
        ):
            return self._move(
                "open",
                now,
                f"failure rate {window.failures}/{window.calls} reached {rate:.0%}",
            )
        return None

    def success_can_wait(self) -> bool:
        """Whether a closed-state success may be recorded later with the same effect.

        True while the breaker is closed, counts no consecutive failure (so a success
        would not reset anything now) and, with a failure rate, its window holds no
        failure (so no success can bring the ratio to the rate): a success recorded
        later, at its own time, then leaves everything as it would have been.
        """
        return (
            self.state == "closed"
            and self.consecutive_failures == 0
            and (self.policy.failure_rate is None or self._window.failures == 0)
        )

    def release(self, generation: int, trial: bool) -> None:
        """Give back a trial permit whose call ended without an outcome (cancelled)."""
        if trial and generation == self.generation and self.state == "half_open":
            self.trials_in_flight -= 1

    def force(self, state: State, now: float, reason: str) -> Transition | None:
        """Move to ``state`` by hand (operators, tests); ``None`` if already there."""
        if state == self.state:
            return None
        return self._move(state, now, reason)

    def snapshot(self, now: float) -> BreakerSnapshot:
        """The state as it stands (the window is aged to ``now`` first)."""
        self._window._expire(now)
        retry_at = None
        if self.state == "open" and self.opened_at is not None:
            retry_at = self.opened_at + self.policy.reset_timeout
        return BreakerSnapshot(
            state=self.state,
            consecutive_failures=self.consecutive_failures,
            window_calls=self._window.calls,
            window_failures=self._window.failures,
            opened_at=self.opened_at,
            retry_at=retry_at,
            trials_in_flight=self.trials_in_flight,
            total_successes=self.total_successes,
            total_failures=self.total_failures,
        )

    def _move(self, new: State, now: float, reason: str) -> Transition:
        old = self.state
        self.state = new
        self.changed_at = now
        self.generation += 1
        self.closed_admission = Admission(True, False, self.generation, None)
        self.trials_in_flight = 0
        self.trial_successes = 0
        if new == "open":
            self.opened_at = now
        if new == "closed":
            self.consecutive_failures = 0
            self._window.clear()
        return Transition(old, new, reason)
