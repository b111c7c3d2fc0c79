"""The call path over loopback, with the real anthropic client: the contract's failure table."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from failover import AllEndpointsFailed, DeadlineExceeded, RequestError, Router
from failover._clock import SystemClock, VirtualClock
from failover.testing import Blackhole, FakeProvider, Latency, Ok, Reset, Status, Trickle

from _support import KEY, make_policy

MSG = [{"role": "user", "content": "hello there"}]


class RecordingClock(SystemClock):
    """The real clock, remembering every sleep the router asked for."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:  # type: ignore[override]
        self.slept.append(seconds)
        time.sleep(seconds)


def router_for(fakes: list[FakeProvider], **kwargs: object) -> Router:
    urls = {f.name: f.url for f in fakes}
    clock = kwargs.pop("clock", None)
    return Router.from_dict(make_policy(urls, **kwargs), clock=clock)  # type: ignore[arg-type]


def test_healthy_primary_answers(fakes: list[FakeProvider]) -> None:
    """With everything up, the first endpoint answers and the response is normalized."""
    with router_for(fakes) as router:
        resp = router.complete(MSG, max_tokens=64)
    assert resp.text == "Hello from primary"
    assert resp.endpoint == "primary"
    assert resp.provider == "anthropic"
    assert resp.from_cache is False
    assert resp.usage.output_tokens > 0
    assert resp.stop_reason == "end_turn"
    assert [a.outcome for a in resp.attempts] == ["ok"]
    assert resp.raw is not None


def test_connection_refused_fails_over(fakes: list[FakeProvider]) -> None:
    """A refused primary is retried per policy, then the secondary answers."""
    primary = fakes[0]
    primary.stop()
    with router_for(fakes) as router:
        resp = router.complete(MSG)
    assert resp.endpoint == "secondary"
    errors = [(a.endpoint, a.outcome, a.error, a.status_code) for a in resp.attempts]
    assert errors == [
        ("primary", "error", "connect", None),
        ("primary", "error", "connect", None),
        ("secondary", "ok", None, None),
    ]


def test_blackhole_times_out_opens_breaker_then_spares_it(fakes: list[FakeProvider]) -> None:
    """A blackholed primary times out, its breaker opens, and later calls never reach it."""
    primary = fakes[0]
    primary.set_mode(Blackhole())
    router = router_for(
        fakes, timeout={"read": "150ms"}, retry={"attempts": 1}, breaker={"failure_threshold": 2}
    )
    for _ in range(2):
        assert router.complete(MSG).endpoint == "secondary"
    assert router.breaker("primary").state == "open"
    seen = primary.request_count
    resp = router.complete(MSG)
    assert resp.endpoint == "secondary"
    assert resp.attempts[0].outcome == "skipped"
    assert resp.attempts[0].error == "breaker_open"
    assert primary.request_count == seen
    router.close()


def test_529_gets_exactly_the_policy_attempts(fakes: list[FakeProvider]) -> None:
    """An overloaded endpoint receives exactly retry.attempts requests, then fails over."""
    fakes[0].set_mode(Status(529))
    with router_for(fakes, retry={"attempts": 3}) as router:
        resp = router.complete(MSG)
    assert fakes[0].request_count == 3
    assert resp.endpoint == "secondary"
    assert [a.status_code for a in resp.attempts[:3]] == [529, 529, 529]
    assert {a.error for a in resp.attempts[:3]} == {"overloaded"}


def test_429_short_retry_after_is_honoured(fakes: list[FakeProvider]) -> None:
    """A 429 with a short retry-after-ms is retried after exactly that wait."""
    fakes[0].script(Status(429, retry_after_ms=120), Ok())
    clock = RecordingClock()
    with router_for(fakes, clock=clock) as router:
        resp = router.complete(MSG)
    assert resp.endpoint == "primary"
    assert clock.slept == [pytest.approx(0.12)]
    assert fakes[0].request_count == 2


def test_too_long_retry_after_fails_over_at_once(fakes: list[FakeProvider]) -> None:
    """A retry-after beyond max_retry_after fails over without sleeping."""
    fakes[0].set_mode(Status(429, retry_after=60))
    clock = RecordingClock()
    with router_for(fakes, clock=clock, retry={"attempts": 3}) as router:
        resp = router.complete(MSG)
    assert resp.endpoint == "secondary"
    assert clock.slept == []
    assert fakes[0].request_count == 1


def test_401_fails_over_without_retry(fakes: list[FakeProvider]) -> None:
    """A misconfigured endpoint (401) is not retried; the next one answers."""
    fakes[0].set_mode(Status(401))
    with router_for(fakes, retry={"attempts": 3}) as router:
        resp = router.complete(MSG)
    assert fakes[0].request_count == 1
    assert resp.endpoint == "secondary"
    assert resp.attempts[0].error == "auth"


def test_400_raises_request_error_and_spares_the_rest(fakes: list[FakeProvider]) -> None:
    """An invalid request raises RequestError; no retry, the secondary is never called."""
    fakes[0].set_mode(Status(400))
    with router_for(fakes, retry={"attempts": 3}) as router, pytest.raises(RequestError) as info:
        router.complete(MSG)
    assert fakes[0].request_count == 1
    assert fakes[1].request_count == 0
    assert info.value.status_code == 400
    assert info.value.__cause__ is not None
    assert router.breaker("primary").snapshot().total_failures == 0


def test_all_down_raises_with_every_attempt(fakes: list[FakeProvider]) -> None:
    """When every endpoint fails, AllEndpointsFailed lists each attempt, one per line."""
    for fake in fakes:
        fake.set_mode(Status(503))
    with router_for(fakes) as router, pytest.raises(AllEndpointsFailed) as info:
        router.complete(MSG)
    err = info.value
    assert not isinstance(err, DeadlineExceeded)
    assert err.route == "chat"
    assert len(err.attempts) == 6
    lines = str(err).splitlines()
    assert len(lines) == 7
    assert "HTTP 503" in lines[1]
    assert err.__cause__ is not None


def test_deadline_bounds_a_blackholed_route(fakes: list[FakeProvider]) -> None:
    """With every endpoint silent, the call ends at its deadline as DeadlineExceeded."""
    for fake in fakes:
        fake.set_mode(Blackhole())
    with router_for(fakes, deadline="400ms", timeout={"read": "10s"}) as router:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            router.complete(MSG)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, TimeoutError)
    assert elapsed < 0.4 + 0.3  # generous: the bench measures the real overshoot
    # each silent endpoint had its share of the deadline, the last one what was left
    assert [a.error for a in info.value.attempts][-1] == "deadline"
    assert all(f.request_count <= 1 for f in fakes)


def test_deadline_bounds_a_trickling_server(fakes: list[FakeProvider]) -> None:
    """A server trickling bytes within every read timeout is still cut at the deadline."""
    fakes[0].set_mode(Trickle(interval=0.05, chunk=1))
    with router_for(fakes[:1], deadline="300ms", timeout={"read": "10s"}) as router:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            router.complete(MSG)
        elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.3


async def test_async_deadline_bounds_a_trickling_server(fakes: list[FakeProvider]) -> None:
    """The async path is bounded by the deadline against a trickling server too."""
    fakes[0].set_mode(Trickle(interval=0.05, chunk=1))
    router = router_for(fakes[:1], deadline="300ms", timeout={"read": "10s"})
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await router.acomplete(MSG)
    assert time.monotonic() - started < 0.6
    await router.aclose()


def test_a_router_is_ready_when_constructed(
    fakes: list[FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes (SDK imports, clients, breakers) are built by the constructor, so a slow
    set-up never eats the first call's deadline."""
    from failover._build import RouteBuilder

    clock = VirtualClock()
    build = RouteBuilder.route

    def slow_to_build(self: RouteBuilder, route: str) -> Any:
        clock.advance(5)  # a slow first import
        return build(self, route)

    monkeypatch.setattr(RouteBuilder, "route", slow_to_build)
    policy = make_policy({f.name: f.url for f in fakes}, deadline="2s")
    with Router.from_dict(policy, clock=clock) as router:
        assert router.complete(MSG).endpoint == "primary"
        assert fakes[0].request_count == 1


def test_backoff_sleep_never_crosses_the_deadline(fakes: list[FakeProvider]) -> None:
    """When the next retry could not start before the deadline, fail over at once."""
    fakes[0].set_mode(Status(503))
    clock = RecordingClock()
    policy_retry = {"attempts": 5, "backoff": {"initial": "2s", "max": "2s", "jitter": "none"}}
    with router_for(fakes, clock=clock, deadline="1s", retry=policy_retry) as router:
        resp = router.complete(MSG)
    assert resp.endpoint == "secondary"
    assert clock.slept == []


def test_half_open_closes_after_a_good_trial_and_reopens_after_a_bad_one(
    fakes: list[FakeProvider],
) -> None:
    """Through the router: a failed trial reopens the breaker; a good one closes it."""
    clock = VirtualClock()
    fakes[0].set_mode(Status(500))
    router = router_for(fakes, clock=clock, retry={"attempts": 1}, breaker={"reset_timeout": "10s"})
    for _ in range(3):
        router.complete(MSG)
    breaker = router.breaker("primary")
    assert breaker.state == "open"
    clock.advance(10)
    assert router.complete(MSG).endpoint == "secondary"  # the trial failed
    assert breaker.state == "open"
    clock.advance(10)
    fakes[0].set_mode(Ok())
    assert router.complete(MSG).endpoint == "primary"
    assert breaker.state == "closed"
    router.close()


def test_slow_calls_trip_the_breaker(fakes: list[FakeProvider]) -> None:
    """Answers slower than slow_call count as failures and open the breaker."""
    fakes[0].set_mode(Latency(0.03))
    with router_for(fakes, breaker={"slow_call": "10ms", "failure_threshold": 2}) as router:
        for _ in range(2):
            assert router.complete(MSG).endpoint == "primary"
        assert router.breaker("primary").state == "open"
        assert router.complete(MSG).endpoint == "secondary"


def test_failure_rate_trips_the_breaker(fakes: list[FakeProvider]) -> None:
    """A failure ratio at failure_rate over minimum_calls opens the breaker."""
    fakes[0].script(*[Status(500), Ok()] * 3)
    breaker_policy = {"failure_threshold": 100, "failure_rate": 0.5, "minimum_calls": 6}
    with router_for(fakes, retry={"attempts": 1}, breaker=breaker_policy) as router:
        for _ in range(6):
            router.complete(MSG)
        assert router.breaker("primary").state == "open"


def test_32_threads_are_not_serialized(fakes: list[FakeProvider]) -> None:
    """32 concurrent calls to a 300 ms endpoint overlap (no lock held across I/O)."""
    fakes[0].set_mode(Latency(0.3))
    router = router_for(fakes)
    router.complete([{"role": "user", "content": "warm"}])
    results: list[str] = []

    def call() -> None:
        results.append(router.complete(MSG).endpoint)

    threads = [threading.Thread(target=call) for _ in range(32)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    router.close()
    assert results == ["primary"] * 32
    assert elapsed < 3.0  # serialized would take 9.6 s; bench/ measures the real figure


async def test_async_failover_and_concurrency(fakes: list[FakeProvider]) -> None:
    """acomplete fails over like complete, and 20 tasks share one router."""
    fakes[0].set_mode(Reset())
    router = router_for(fakes, retry={"attempts": 1}, breaker={"failure_threshold": 50})
    results = await asyncio.gather(*(router.acomplete(MSG) for _ in range(20)))
    assert {r.endpoint for r in results} == {"secondary"}
    assert all(r.attempts[0].error == "connect" for r in results)
    await router.aclose()


async def test_cancellation_releases_the_trial_permit(fakes: list[FakeProvider]) -> None:
    """A cancelled half-open trial is not a failure, and its permit goes back."""
    clock = VirtualClock()
    fakes[0].set_mode(Status(500))
    router = router_for(fakes, clock=clock, retry={"attempts": 1}, breaker={"failure_threshold": 1})
    await router.acomplete(MSG)
    breaker = router.breaker("primary")
    assert breaker.state == "open"
    clock.advance(30)
    fakes[0].set_mode(Blackhole())
    task = asyncio.create_task(router.acomplete(MSG))
    while fakes[0].request_count < 2:  # noqa: ASYNC110 - polling the fake's own counter
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state == "half_open"
    assert breaker.snapshot().trials_in_flight == 0
    fakes[0].set_mode(Ok())
    assert (await router.acomplete(MSG)).endpoint == "primary"
    assert breaker.state == "closed"
    await router.aclose()


def test_one_router_across_threads_and_event_loops(fakes: list[FakeProvider]) -> None:
    """The same Router serves sync threads and several event loops at once."""
    router = router_for(fakes)
    errors: list[BaseException] = []

    def in_loop() -> None:
        try:
            resp = asyncio.run(router.acomplete(MSG))
            assert resp.endpoint == "primary"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=in_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert router.complete(MSG).endpoint == "primary"
    for thread in threads:
        thread.join()
    assert errors == []
    router.close()


def test_key_never_leaks(fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture) -> None:
    """The API key is absent from errors, reprs, DEBUG logs and status."""
    for fake in fakes:
        fake.set_mode(Status(401))
    router = router_for(fakes)
    caplog.set_level(logging.DEBUG, logger="failover")
    with pytest.raises(AllEndpointsFailed) as info:
        router.complete(MSG)
    fakes[0].set_mode(Status(400))
    router.breaker("primary").reset()
    with pytest.raises(RequestError) as request_error:
        router.complete(MSG)
    texts = [
        str(info.value),
        repr(info.value),
        str(request_error.value),
        repr(router),
        repr(router.policy),
        str(router.status()),
        caplog.text,
        "\n".join(repr(r.__dict__) for r in caplog.records),
    ]
    assert caplog.records
    for text in texts:
        assert KEY not in text
    assert KEY in fakes[0].requests[0].headers["authorization"]  # it was really sent


def test_status_reports_breakers_and_latency(fakes: list[FakeProvider]) -> None:
    """status() lists each endpoint with state, counts and latency percentiles."""
    fakes[0].set_mode(Status(500))
    with router_for(fakes, retry={"attempts": 1}, breaker={"failure_threshold": 1}) as router:
        router.complete(MSG)
        rows = {row.name: row for row in router.status()}
    assert rows["primary"].state == "open"
    assert rows["primary"].retry_at is not None
    assert rows["primary"].opened_at is not None
    assert rows["primary"].retry_at - rows["primary"].opened_at == pytest.approx(30)
    assert rows["secondary"].state == "closed"
    assert rows["secondary"].latency_p50 is not None
    assert rows["backup"].latency_p50 is None


def test_every_call_is_announced_as_finished(fakes: list[FakeProvider]) -> None:
    """CallFinished follows CallStarted whichever way a call ends, with how it ended."""
    from failover import StreamInterrupted
    from failover._events import CallFinished, CallStarted
    from failover.testing import CutStream

    events: list[object] = []
    router = Router.from_dict(
        make_policy({f.name: f.url for f in fakes}), listeners=[events.append]
    )
    fakes[0].set_mode(Status(400))
    with pytest.raises(RequestError):
        router.complete(MSG)
    fakes[0].set_mode(CutStream(after_events=6))
    with pytest.raises(StreamInterrupted), router.stream(MSG) as stream:
        list(stream)
    fakes[0].set_mode(Ok())
    with router.stream(MSG) as stream:
        next(iter(stream))  # walk away after the first delta
    router.complete(MSG)
    started = [e.call_id for e in events if isinstance(e, CallStarted)]
    finished = {e.call_id: e for e in events if isinstance(e, CallFinished)}
    assert sorted(finished) == sorted(started)
    assert [finished[c].error for c in started] == [
        "RequestError",
        "StreamInterrupted",
        "cancelled",
        None,
    ]
    rows = {row.name: row for row in router.status()}
    assert rows["primary"].recent_errors.get("invalid_request") == 1
    assert rows["primary"].latency_p99 is not None
    router.close()
