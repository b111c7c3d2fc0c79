"""Breaker state machine, in virtual time: resilience4j semantics on pybreaker's states."""

from __future__ import annotations

import asyncio
import threading

import pybreaker
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover._clock import VirtualClock
from failover.breaker._breaker import Breaker
from failover.breaker._core import BreakerCore
from failover.policy._model import BreakerPolicy


def make(clock: VirtualClock | None = None, **settings_: object) -> tuple[Breaker, VirtualClock]:
    clock = clock or VirtualClock()
    values: dict[str, object] = {
        "failure_threshold": 3,
        "failure_rate": None,
        "minimum_calls": 20,
        "window": 60.0,
        "slow_call": None,
        "reset_timeout": 30.0,
        "half_open_max_calls": 1,
    }
    values.update(settings_)
    return Breaker("ep", BreakerPolicy(**values), clock), clock


def fail(breaker: Breaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        permit.failure()


def test_opens_after_consecutive_failures() -> None:
    """failure_threshold consecutive failures open the breaker; fewer do not."""
    breaker, _ = make()
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"
    assert breaker.acquire() is None


def test_success_resets_the_consecutive_count() -> None:
    """A success between failures starts the consecutive count again."""
    breaker, _ = make()
    fail(breaker, 2)
    permit = breaker.acquire()
    assert permit is not None
    permit.success(0.1)
    fail(breaker, 2)
    assert breaker.state == "closed"


def test_failure_rate_needs_minimum_calls() -> None:
    """The failure rate trips only once the window holds minimum_calls calls."""
    breaker, _ = make(failure_threshold=100, failure_rate=0.5, minimum_calls=10)
    for i in range(9):
        permit = breaker.acquire()
        assert permit is not None
        permit.failure() if i % 2 == 0 else permit.success(0.01)
    assert breaker.state == "closed"  # 5/9 failed, but only 9 calls
    permit = breaker.acquire()
    assert permit is not None
    permit.success(0.01)  # 5/10 = 50 %
    assert breaker.state == "open"


def test_failure_rate_window_forgets_old_calls() -> None:
    """Failures older than the window no longer count toward the rate."""
    breaker, clock = make(failure_threshold=100, failure_rate=0.5, minimum_calls=4, window=10.0)
    fail(breaker, 3)
    clock.advance(11.0)
    for _ in range(3):
        permit = breaker.acquire()
        assert permit is not None
        permit.success(0.01)
    fail(breaker)
    assert breaker.state == "closed"  # 1 failure of 4 in the window
    assert breaker.snapshot().window_calls == 4


def test_slow_calls_count_as_failures() -> None:
    """A success slower than slow_call counts as a failure."""
    breaker, _ = make(slow_call=1.0)
    for _ in range(3):
        permit = breaker.acquire()
        assert permit is not None
        permit.success(1.5)
    assert breaker.state == "open"


def test_half_opens_after_reset_timeout_to_the_millisecond() -> None:
    """open → half_open exactly at reset_timeout, not at a whole second."""
    breaker, clock = make(reset_timeout=0.3)
    fail(breaker, 3)
    clock.advance(0.299)
    assert breaker.acquire() is None
    clock.advance(0.001)
    permit = breaker.acquire()
    assert permit is not None
    assert permit.trial
    assert breaker.state == "half_open"


def test_closes_after_enough_good_trials() -> None:
    """half_open closes once half_open_max_calls trials succeeded."""
    breaker, clock = make(half_open_max_calls=2)
    fail(breaker, 3)
    clock.advance(30)
    first, second = breaker.acquire(), breaker.acquire()
    assert first is not None
    assert second is not None
    assert breaker.acquire() is None
    first.success(0.01)
    assert breaker.state == "half_open"
    second.success(0.01)
    assert breaker.state == "closed"


def test_failed_trial_reopens_for_a_full_reset_timeout() -> None:
    """A failed trial reopens the breaker, timed from the failure."""
    breaker, clock = make(reset_timeout=10.0)
    fail(breaker, 3)
    clock.advance(10)
    trial = breaker.acquire()
    assert trial is not None
    clock.advance(4)
    trial.failure()
    assert breaker.state == "open"
    clock.advance(9.9)
    assert breaker.acquire() is None
    clock.advance(0.1)
    assert breaker.acquire() is not None


def test_released_trial_permit_can_be_taken_again() -> None:
    """A trial that ends without an outcome (cancelled) hands its permit back, counting nothing."""
    breaker, clock = make()
    fail(breaker, 3)
    clock.advance(30)
    trial = breaker.acquire()
    assert trial is not None
    assert breaker.acquire() is None
    trial.release()
    assert breaker.state == "half_open"
    again = breaker.acquire()
    assert again is not None
    assert again.trial


def test_outcome_from_before_a_transition_is_ignored() -> None:
    """A call admitted while closed cannot close or reopen the breaker after it changed."""
    breaker, clock = make()
    early = breaker.acquire()
    assert early is not None
    fail(breaker, 3)
    clock.advance(30)
    trial = breaker.acquire()
    assert trial is not None
    early.success(0.01)
    assert breaker.state == "half_open"
    early.failure()  # reported twice: still ignored
    trial.success(0.01)
    assert breaker.state == "closed"


def test_pybreaker_listeners_hear_transitions() -> None:
    """pybreaker listeners receive state_change with pybreaker's state names."""
    seen: list[tuple[str, str]] = []

    class Listener(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
        def state_change(self, cb: object, old: object, new: object) -> None:
            seen.append((getattr(old, "name", ""), getattr(new, "name", "")))

    breaker, clock = make()
    breaker.pybreaker.add_listener(Listener())
    fail(breaker, 3)
    clock.advance(30)
    permit = breaker.acquire()
    assert permit is not None
    permit.success(0.01)
    assert seen == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_exactly_n_across_50_threads(max_calls: int) -> None:
    """50 threads racing for half-open permits get exactly half_open_max_calls of them."""
    breaker, clock = make(half_open_max_calls=max_calls)
    fail(breaker, 3)
    clock.advance(30)
    barrier = threading.Barrier(50)
    admitted: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        permit = breaker.acquire()
        if permit is not None:
            with lock:
                admitted.append(permit)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == max_calls


async def test_half_open_admits_exactly_n_across_50_tasks() -> None:
    """50 asyncio tasks get exactly half_open_max_calls trial permits."""
    breaker, clock = make(half_open_max_calls=2)
    fail(breaker, 3)
    clock.advance(30)

    async def worker() -> bool:
        await asyncio.sleep(0)
        permit = breaker.acquire()
        await asyncio.sleep(0)
        return permit is not None

    results = await asyncio.gather(*(worker() for _ in range(50)))
    assert sum(results) == 2


def test_status_snapshot_reports_retry_at() -> None:
    """The snapshot gives opened_at and retry_at on the breaker's clock."""
    breaker, clock = make(reset_timeout=5.0)
    clock.advance(100)
    fail(breaker, 3)
    snap = breaker.snapshot()
    assert snap.state == "open"
    assert snap.opened_at == 100
    assert snap.retry_at == 105
    assert snap.total_failures == 3


operations = st.lists(
    st.sampled_from(["acquire", "success", "failure", "release", "tick"]), max_size=80
)


@settings(max_examples=300, deadline=None)
@given(ops=operations, max_calls=st.integers(1, 4))
def test_never_more_trials_than_permitted(ops: list[str], max_calls: int) -> None:
    """Under any interleaving, in-flight plus successful trials never exceed the limit."""
    core = BreakerCore(
        BreakerPolicy(
            failure_threshold=2,
            failure_rate=None,
            minimum_calls=5,
            window=10.0,
            slow_call=None,
            reset_timeout=1.0,
            half_open_max_calls=max_calls,
        )
    )
    now = 0.0
    held: list[tuple[int, bool]] = []
    for op in ops:
        if op == "tick":
            now += 0.6
        elif op == "acquire":
            admission = core.acquire(now)
            if admission.admitted:
                held.append((admission.generation, admission.trial))
        elif held:
            generation, trial = held.pop(0)
            if op == "release":
                core.release(generation, trial)
            else:
                core.record(now, generation, trial, failed=op == "failure")
        assert core.trials_in_flight >= 0
        assert core.trials_in_flight + core.trial_successes <= max_calls
        if core.state != "half_open":
            assert core.trials_in_flight == 0
