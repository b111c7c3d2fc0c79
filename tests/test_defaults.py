"""What the built-in defaults do against each common fault (issue 16 item 6).

Every policy here sets no timeout, retry or breaker key: only endpoints and a route (and,
where noted, the route's deadline, so a test need not wait the default 90 s). The
findings are written up in docs/failures.md, "What the defaults do".
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from failover import Router, StreamInterrupted
from failover._clock import VirtualClock
from failover.policy._sections import BreakerPolicy, RetryPolicy, TimeoutPolicy
from failover.testing import Blackhole, CutStream, FakeProvider, Ok, Status, Trickle

from _support import KEY

MSG = [{"role": "user", "content": "hello there"}]
# Anthropic stream events: message_start, content_block_start, ping, then one delta per word.
FIRST_DELTA = 3
# 300 bytes every 250 ms: headers at once, the first word ~0.25 s later, gaps between words.
SLOW = Trickle(interval=0.25, chunk=300)


def defaults_router(
    fakes: list[FakeProvider], *, clock: VirtualClock | None = None, **route: Any
) -> Router:
    """A route over ``fakes`` with nothing but the built-in defaults."""
    endpoints = {
        f.name: {"provider": "anthropic", "model": "claude-test", "api_key": KEY, "base_url": f.url}
        for f in fakes
    }
    routes = {"chat": {"endpoints": [f.name for f in fakes], **route}}
    return Router.from_dict({"version": 1, "endpoints": endpoints, "routes": routes}, clock=clock)


def outcomes(attempts: Any) -> list[tuple[str, str, str | None]]:
    return [(a.endpoint, a.outcome, a.error) for a in attempts]


def drain(router: Router, deltas: list[str]) -> Any:
    with router.stream(MSG) as s:
        for text in s:
            deltas.append(text)
    return s.response


def test_the_defaults_are_what_the_docs_say() -> None:
    """The built-in values docs/failures.md reasons about."""
    timeout, retry, breaker = TimeoutPolicy(), RetryPolicy(), BreakerPolicy()
    assert (timeout.connect, timeout.read, timeout.stream_idle) == (3.0, 60.0, 30.0)
    assert timeout.first_token is None
    assert (retry.attempts, retry.backoff.initial, retry.backoff.max) == (2, 0.25, 4.0)
    assert (retry.budget.ratio, retry.budget.min_retries) == (0.2, 10)
    assert (breaker.failure_threshold, breaker.reset_timeout) == (5, 30.0)
    with FakeProvider("a") as a:
        router = defaults_router([a])
        assert router.policy.routes["chat"].deadline == 90.0
        assert router.policy.routes["chat"].on_interrupt == "raise"
        router.close()


def test_silent_provider_costs_its_share_of_the_deadline() -> None:
    """A provider that accepts and never answers is left after its share of the deadline
    (half of it with two endpoints, never under connect's 3 s), tried once, then the
    next answers. The route's deadline is set to 6 s here; the default 90 s gives 45 s."""
    with FakeProvider("silent", mode=Blackhole()) as silent, FakeProvider("healthy") as ok:
        router = defaults_router([silent, ok], deadline="6s")
        started = time.monotonic()
        resp = router.complete(MSG)
        elapsed = time.monotonic() - started
        router.close()
    assert resp.endpoint == "healthy"
    assert outcomes(resp.attempts) == [("silent", "error", "timeout"), ("healthy", "ok", None)]
    assert silent.request_count == 1
    assert 2.8 < elapsed < 3 + 1.5  # its share: max(6 s / 2, connect 3 s)


def test_slow_first_token_is_waited_for() -> None:
    """first_token is off by default: a stream whose headers come at once but whose first
    token is slow is waited for (up to its share of the deadline), not failed over."""
    with FakeProvider("primary", mode=SLOW) as primary, FakeProvider("b") as b:
        router = defaults_router([primary, b])
        deltas: list[str] = []
        resp = drain(router, deltas)
        router.close()
    assert resp.endpoint == "primary"
    assert deltas == ["Hello ", "from ", "primary"]
    assert b.request_count == 0


def test_a_stall_shorter_than_stream_idle_is_waited_out() -> None:
    """stream_idle is 30 s by default: gaps between deltas below it are a slow stream, not
    a broken one; the answer completes (a longer stall raises StreamInterrupted)."""
    with FakeProvider("primary", mode=SLOW) as primary, FakeProvider("b") as b:
        router = defaults_router([primary, b])
        resp = drain(router, [])
        router.close()
    assert resp.text == "Hello from primary"
    assert b.request_count == 0


def test_a_cut_before_the_first_delta_is_retried_then_failed_over() -> None:
    """A stream cut before any text is as safe to repeat as a refused connection: retried
    once (attempts 2), then the next endpoint answers."""
    clock = VirtualClock()  # the default backoff (up to 250 ms) sleeps in virtual time
    with FakeProvider("primary", mode=CutStream(after_events=1)) as primary, FakeProvider("b") as b:
        router = defaults_router([primary, b], clock=clock)
        resp = drain(router, [])
        router.close()
    assert resp.text == "Hello from b"
    assert outcomes(resp.attempts) == [
        ("primary", "error", "connect"),
        ("primary", "error", "connect"),
        ("b", "ok", None),
    ]


def test_a_cut_after_text_is_not_rescued() -> None:
    """on_interrupt is raise by default: a cut after text ends the stream with
    StreamInterrupted and the partial text; the next endpoint is not tried."""
    with FakeProvider("primary") as primary, FakeProvider("b") as b:
        primary.set_mode(CutStream(after_events=FIRST_DELTA + 2))
        router = defaults_router([primary, b])
        deltas: list[str] = []
        with pytest.raises(StreamInterrupted) as info:
            drain(router, deltas)
        router.close()
    assert info.value.partial_text == "Hello from "
    assert outcomes(info.value.attempts) == [("primary", "error", "stream_cut")]
    assert (primary.request_count, b.request_count) == (1, 0)


def test_a_flapping_primary_is_answered_by_its_retry() -> None:
    """A primary failing every other request: the default retry answers each call from
    the primary, and the breaker (5 consecutive failures) stays closed."""
    clock = VirtualClock()
    with FakeProvider("primary") as primary, FakeProvider("b") as b:
        primary.script(*[Status(503), Ok()] * 10)
        router = defaults_router([primary, b], clock=clock)
        answered = [router.complete(MSG).endpoint for _ in range(10)]
        state = router.breaker("primary").state
        router.close()
    assert answered == ["primary"] * 10
    assert state == "closed"
    assert b.request_count == 0


def test_a_primary_down_for_a_while_opens_its_breaker_then_recovers() -> None:
    """A primary down for a burst: after 5 consecutive failures its breaker opens and calls
    go straight to the next endpoint; 30 s later one trial closes it again."""
    clock = VirtualClock()
    with FakeProvider("primary", mode=Status(503)) as primary, FakeProvider("b") as b:
        router = defaults_router([primary, b], clock=clock)
        answered = [router.complete(MSG).endpoint for _ in range(6)]
        assert answered == ["b"] * 6
        assert router.breaker("primary").state == "open"
        sent = primary.request_count
        assert sent <= 5 + 1  # 5 failures open it; calls after that skip it
        primary.set_mode(Ok())
        clock.advance(30)
        assert router.complete(MSG).endpoint == "primary"
        assert router.breaker("primary").state == "closed"
        router.close()


def test_a_short_deadline_still_reaches_the_healthy_endpoint() -> None:
    """An endpoint's share is never under its connect timeout (3 s) unless that would take
    more than half the time left: on a 3 s deadline the silent first endpoint gets 1.5 s,
    and the healthy second answers."""
    with FakeProvider("silent", mode=Blackhole()) as silent, FakeProvider("healthy") as ok:
        router = defaults_router([silent, ok], deadline="3s")
        started = time.monotonic()
        resp = router.complete(MSG)
        elapsed = time.monotonic() - started
        router.close()
    assert resp.endpoint == "healthy"
    assert outcomes(resp.attempts)[0] == ("silent", "error", "timeout")
    assert ok.request_count == 1
    assert elapsed < 3 + 0.5
