"""A healthy endpoint's successes wait in its breaker's ledger and change nothing by it.

The router hands closed-state successes to the breaker through ``Permit.succeeded``: one
append, applied (to the breaker and the stats) at the next failure, snapshot or flush.
These tests hold that to "the same effect as recording each success at once".
"""

from __future__ import annotations

import functools
import gc
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover import AllEndpointsFailed, Router, Usage
from failover._clock import VirtualClock
from failover.breaker._breaker import LEDGER_MAX, Breaker, Success
from failover.breaker._core import BreakerCore
from failover.instrumentation import StatsListener
from failover.policy._model import BreakerPolicy
from failover.providers import ProviderFailure, ProviderRequest, ProviderResult

from _support import make_policy

MSG = [{"role": "user", "content": "hello"}]


def policy(**settings_: Any) -> BreakerPolicy:
    values: dict[str, Any] = {
        "failure_threshold": 3,
        "failure_rate": None,
        "minimum_calls": 4,
        "window": 10.0,
        "slow_call": None,
        "reset_timeout": 5.0,
        "half_open_max_calls": 1,
    }
    values.update(settings_)
    return BreakerPolicy(**values)


class Handed:
    """What a breaker's ledger handed over: (time, latency, generation) and when."""

    def __init__(self) -> None:
        self.items: list[Success] = []
        self.at: list[float] = []

    def __call__(self, items: list[Success], at: float) -> None:
        self.items += items
        self.at.append(at)


# --- the state machine's side ----------------------------------------------------------------


def test_success_can_wait_only_where_it_cannot_change_the_state() -> None:
    """Closed, no consecutive failure and (with a failure rate) no failure in the window."""
    core = BreakerCore(policy(failure_rate=0.5))
    assert core.success_can_wait()
    core.record(0.0, 0, False, True)
    assert not core.success_can_wait()  # a consecutive failure to reset, one in the window
    core.record(1.0, 0, False, False)
    assert not core.success_can_wait()  # the failure is still in the window
    core.snapshot(20.0)  # ages the window past it
    assert core.success_can_wait()
    plain = BreakerCore(policy())
    plain.record(0.0, 0, False, True)
    plain.record(0.0, 0, False, False)
    assert plain.success_can_wait()  # without a failure rate the window does not matter
    plain.force("open", 1.0, "test")
    assert not plain.success_can_wait()


ops = st.lists(
    st.one_of(
        st.tuples(st.just("ok"), st.floats(0.001, 3.0)),
        st.tuples(st.just("fail"), st.just(0.0)),
        st.tuples(st.just("tick"), st.floats(0.1, 4.0)),
        st.tuples(st.just("snapshot"), st.just(0.0)),
        st.tuples(st.just("flush"), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=ops,
    rate=st.sampled_from([None, 0.5]),
    slow=st.sampled_from([None, 1.0]),
)
def test_a_ledger_changes_nothing_the_breaker_decides(
    steps: list[tuple[str, float]], rate: float | None, slow: float | None
) -> None:
    """Any sequence of calls gives the same states, transitions and counts with a ledger
    as with every success recorded at once."""
    settings_ = policy(failure_rate=rate, slow_call=slow)
    clocks = VirtualClock(), VirtualClock()
    heard: tuple[list[Any], list[Any]] = ([], [])
    handed = Handed()
    plain = Breaker("ep", settings_, clocks[0], on_transition=lambda _, t: heard[0].append(t))
    ledgered = Breaker(
        "ep",
        settings_,
        clocks[1],
        on_transition=lambda _, t: heard[1].append(t),
        on_successes=handed,
    )
    oks = 0
    for op, value in steps:
        if op == "tick":
            for clock in clocks:
                clock.advance(value)
            continue
        if op == "snapshot":
            assert plain.snapshot() == ledgered.snapshot()
            continue
        if op == "flush":
            ledgered.flush()
            continue
        permits = plain.acquire(), ledgered.acquire()
        assert (permits[0] is None) == (permits[1] is None)
        if permits[0] is None or permits[1] is None:
            continue
        if op == "ok":
            permits[0].success(value)
            told = permits[1].succeeded(clocks[1].monotonic(), value)
            oks += not told and (slow is None or value <= slow)  # a slow one failed
        else:
            permits[0].failure()
            permits[1].failure()
        assert plain.state == ledgered.state
        assert heard[0] == heard[1]
    assert plain.snapshot() == ledgered.snapshot()
    assert heard[0] == heard[1]
    # Every success the caller left to the ledger was handed over, once.
    successes = plain.snapshot().total_successes
    assert len(handed.items) + oks == successes


def test_successes_are_applied_at_their_own_times() -> None:
    """A success that waited ages out of the failure-rate window from when it happened."""
    clock = VirtualClock()
    breaker = Breaker("ep", policy(failure_rate=0.5), clock, on_successes=Handed())
    for _ in range(3):
        permit = breaker.acquire()
        assert permit is not None
        assert permit.succeeded(clock.monotonic(), 0.1)
    assert breaker.ledger is not None
    assert len(breaker.ledger) == 3
    clock.advance(11.0)  # past the 10 s window: the three are gone when applied
    snap = breaker.snapshot()
    assert (snap.window_calls, snap.total_successes) == (0, 3)


def test_a_failure_applies_the_waiting_successes_first() -> None:
    """Successes before a failure count before it: they are in the window, in order."""
    clock = VirtualClock()
    handed = Handed()
    breaker = Breaker("ep", policy(failure_rate=0.5), clock, on_successes=handed)
    for latency in (0.1, 0.2):
        permit = breaker.acquire()
        assert permit is not None
        assert permit.succeeded(clock.monotonic(), latency)
    assert handed.items == []
    permit = breaker.acquire()
    assert permit is not None
    permit.failure()
    assert [latency for _, latency, _ in handed.items] == [0.1, 0.2]
    snap = breaker.snapshot()
    assert (snap.window_calls, snap.window_failures, snap.consecutive_failures) == (3, 1, 1)
    # With a failure in the window a success cannot wait: it is recorded at once.
    permit = breaker.acquire()
    assert permit is not None
    assert not permit.succeeded(clock.monotonic(), 0.3)
    assert breaker.snapshot().consecutive_failures == 0


def test_trials_slow_calls_and_stores_without_a_ledger_record_at_once() -> None:
    """Only a closed-state, non-trial, not-slow success may wait, and only with a hook."""
    clock = VirtualClock()
    no_hook = Breaker("ep", policy(), clock)
    permit = no_hook.acquire()
    assert permit is not None
    assert no_hook.ledger is None
    assert not permit.succeeded(0.0, 0.1)
    assert no_hook.snapshot().total_successes == 1

    breaker = Breaker("ep", policy(slow_call=1.0), clock, on_successes=Handed())
    permit = breaker.acquire()
    assert permit is not None
    assert not permit.succeeded(0.0, 2.0)  # slow: a failure, recorded now
    assert breaker.snapshot().total_failures == 1
    breaker.force_open()
    clock.advance(6.0)
    trial = breaker.acquire()
    assert trial is not None
    assert trial.trial
    assert not trial.succeeded(clock.monotonic(), 0.1)
    assert breaker.state == "closed"
    assert not trial.succeeded(clock.monotonic(), 0.1)  # reported once only
    assert breaker.snapshot().total_successes == 1


def test_the_ledger_is_bounded() -> None:
    """Past LEDGER_MAX waiting successes the call that adds one applies them all."""
    handed = Handed()
    breaker = Breaker("ep", policy(), VirtualClock(), on_successes=handed)
    assert breaker.ledger is not None
    for _ in range(LEDGER_MAX * 3):
        permit = breaker.acquire()
        assert permit is not None
        permit.succeeded(0.0, 0.1)
        assert len(breaker.ledger) <= LEDGER_MAX
    assert len(handed.items) + len(breaker.ledger) == LEDGER_MAX * 3


def test_no_success_is_lost_between_threads() -> None:
    """Eight threads append while others fail and snapshot: every success is counted."""
    handed = Handed()
    clock = VirtualClock()
    breaker = Breaker("ep", policy(failure_threshold=10_000), clock, on_successes=handed)
    per_thread = 2000
    start = threading.Barrier(10)

    def succeed() -> None:
        start.wait()
        for _ in range(per_thread):
            permit = breaker.acquire()
            assert permit is not None
            if not permit.succeeded(0.0, 0.01):
                handed([(0.0, 0.01, -1)], 0.0)  # recorded at once: count it here

    def disturb() -> None:
        start.wait()
        for _ in range(200):
            permit = breaker.acquire()
            assert permit is not None
            permit.failure()
            breaker.snapshot()

    threads = [threading.Thread(target=succeed) for _ in range(8)]
    threads += [threading.Thread(target=disturb) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = breaker.snapshot()
    assert snap.total_successes == 8 * per_thread
    assert snap.total_failures == 400
    assert len(handed.items) == 8 * per_thread


# --- the stats' side --------------------------------------------------------------------------


def test_stats_count_handed_successes_at_their_own_age() -> None:
    """Items timed on the breaker's clock land at the same age on the listener's clock."""
    now = [1000.0]
    stats = StatsListener(window=60.0, clock=lambda: now[0])
    stats.successes("ep", [(5.0, 0.2, 0), (9.0, 0.4, 0)], 10.0)  # 5 s and 1 s old
    snap = stats.snapshot()["ep"]
    assert (snap.calls, snap.ok, snap.p99) == (2, 2, 0.4)
    now[0] += 56.0  # the older one (at 995) is now 61 s old: out of the window
    snap = stats.snapshot()["ep"]
    assert (snap.calls, snap.ok, snap.p50) == (1, 1, 0.4)


def test_stats_place_a_success_that_waited_behind_a_later_attempt_at_its_own_age() -> None:
    """A success handed over after a later attempt was counted (a request error the
    breaker does not count, or another thread) still ages out at its own time."""
    now = [1000.0]
    stats = StatsListener(window=60.0, clock=lambda: now[0])
    stats.attempt("ep", "error", 0.1, "unsupported")  # counted at 1000
    stats.successes("ep", [(5.0, 0.2, 0), (7.0, 0.3, 0)], 30.0)  # at 975 and 977
    stats.successes("ep", [(-100.0, 0.9, 0)], 30.0)  # at 870: already out of the window
    snap = stats.snapshot()["ep"]
    assert (snap.calls, snap.ok, snap.errors) == (3, 2, {"unsupported": 1})
    now[0] += 36.0  # 975 is now 61 s old, 977 59 s, 1000 36 s
    snap = stats.snapshot()["ep"]
    assert (snap.calls, snap.ok, snap.p50) == (2, 1, 0.3)
    now[0] += 2.0
    snap = stats.snapshot()["ep"]
    assert (snap.calls, snap.ok, snap.errors) == (1, 0, {"unsupported": 1})


def test_stats_snapshot_applies_what_waits_and_holds_breakers_weakly() -> None:
    """A snapshot applies the ledgers it follows; a breaker gone is not kept alive."""
    stats = StatsListener()
    clock = VirtualClock()
    breaker = Breaker("ep", policy(), clock, on_successes=functools.partial(stats.successes, "ep"))
    stats.follow(breaker)
    permit = breaker.acquire()
    assert permit is not None
    assert permit.succeeded(clock.monotonic(), 0.25)
    assert (stats.snapshot()["ep"].ok, stats.snapshot()["ep"].p50) == (1, 0.25)
    assert len(stats._sources) == 1
    del breaker, permit
    gc.collect()
    assert len(stats._sources) == 0


class Steady:
    """An in-process adapter that always answers, or fails when told to."""

    name = "steady"

    def __init__(self) -> None:
        self.fail = False

    def complete(self, call: ProviderRequest) -> ProviderResult:
        if self.fail:
            from failover._failures import Failure

            raise ProviderFailure(Failure("server", status_code=500, detail="down"))
        return ProviderResult(text="ok", model="steady-1", usage=Usage(1, 1))

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        return self.complete(call)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def test_router_status_counts_every_success_that_waited() -> None:
    """Through the Router: successes wait, and status() and failures see all of them."""
    adapter = Steady()
    policy_ = make_policy({"ep": "http://127.0.0.1:9"}, retry={"attempts": 1})
    router = Router.from_dict(policy_, providers={"ep": adapter}, clock=VirtualClock())
    for _ in range(5):
        assert router.complete(MSG, max_tokens=8).text == "ok"
    ledger = router.breaker("ep").ledger
    assert ledger is not None
    assert len(ledger) == 5  # waiting, not yet applied
    (status,) = router.status()
    assert (status.total_successes, status.recent_calls, status.latency_p50) == (5, 5, 0.0)
    assert len(ledger) == 0
    for _ in range(3):
        router.complete(MSG, max_tokens=8)
    adapter.fail = True
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG, max_tokens=8)
    (status,) = router.status()
    assert (status.total_successes, status.total_failures) == (8, 1)
    assert (status.recent_calls, dict(status.recent_errors)) == (9, {"server": 1})
    assert status.consecutive_failures == 1
    router.close()


def test_router_counts_every_success_across_threads_and_tasks() -> None:
    """Calls from threads and an event loop, status() read meanwhile: none is lost."""
    import asyncio

    policy_ = make_policy({"ep": "http://127.0.0.1:9"}, retry={"attempts": 1})
    router = Router.from_dict(policy_, providers={"ep": Steady()})
    stop = threading.Event()

    def call(times: int) -> None:
        for _ in range(times):
            router.complete(MSG, max_tokens=8)

    def read() -> None:
        while not stop.is_set():
            router.status()

    async def tasks() -> None:
        await asyncio.gather(*(router.acomplete(MSG, max_tokens=8) for _ in range(150)))

    reader = threading.Thread(target=read)
    reader.start()
    callers = [threading.Thread(target=call, args=(250,)) for _ in range(4)]
    for thread in callers:
        thread.start()
    asyncio.run(tasks())
    for thread in callers:
        thread.join()
    stop.set()
    reader.join()
    (status,) = router.status()
    assert (status.total_successes, status.recent_calls) == (1150, 1150)
    router.close()
