"""Streams over loopback with the real SDKs: failover before the first delta, honesty after."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from failover import AllEndpointsFailed, DeadlineExceeded, Router, StreamInterrupted
from failover._clock import VirtualClock
from failover.testing import (
    Blackhole,
    CutStream,
    FakeProvider,
    Mode,
    Ok,
    Reset,
    Status,
    StreamError,
    Trickle,
)

from _support import make_policy

MSG = [{"role": "user", "content": "hello there"}]
WORDS = ["Hello ", "from ", "primary"]

# Anthropic stream events, as the fake sends them: message_start, content_block_start and
# ping come first (indices 0-2), then one content_block_delta per word (3, 4, 5).
FIRST_DELTA = 3
# OpenAI stream events: a role-only chunk first (0), then one chunk per word (1, 2, 3).
OPENAI_FIRST_DELTA = 1
# Answers the fake trickles 300 bytes every 250 ms: the first two words arrive after two
# writes (~0.5 s), the last word one write later, the end of the stream one more later.
TRICKLE = Trickle(interval=0.25, chunk=300)


def router_for(
    fakes: list[FakeProvider],
    *,
    litellm: bool = False,
    route: dict[str, Any] | None = None,
    clock: VirtualClock | None = None,
    **kwargs: Any,
) -> Router:
    """A one-route router over ``fakes`` in order; ``route`` adds route settings."""
    urls = {f.name: f.openai_url if litellm else f.url for f in fakes}
    providers = {f.name: "litellm" for f in fakes} if litellm else None
    policy = make_policy(urls, providers=providers, **kwargs)
    policy["routes"]["chat"].update(route or {})
    return Router.from_dict(policy, clock=clock)


def outcomes(attempts: Any) -> list[tuple[str, str, str | None, int | None]]:
    return [(a.endpoint, a.outcome, a.error, a.status_code) for a in attempts]


def drain(router: Router, deltas: list[str], **params: Any) -> Any:
    """Stream MSG into ``deltas`` (kept on error); return the final Response."""
    with router.stream(MSG, **params) as s:
        for text in s:
            deltas.append(text)
    return s.response


async def adrain(router: Router, deltas: list[str], **params: Any) -> Any:
    async with router.astream(MSG, **params) as s:
        async for text in s:
            deltas.append(text)
    return s.response


# --- the happy path ------------------------------------------------------------------------


def test_healthy_stream_yields_the_words_in_order(fakes: list[FakeProvider]) -> None:
    """A healthy stream yields each word in order; the Response joins exactly those deltas."""
    deltas: list[str] = []
    with router_for(fakes) as router:
        resp = drain(router, deltas, max_tokens=64)
    assert deltas == WORDS
    assert resp.text == "".join(deltas)
    assert resp.endpoint == "primary"
    assert resp.provider == "anthropic"
    assert resp.from_cache is False
    assert resp.cache_age is None
    assert resp.usage.input_tokens == 2
    assert resp.usage.output_tokens == 3
    assert resp.stop_reason == "end_turn"
    assert outcomes(resp.attempts) == [("primary", "ok", None, None)]
    assert fakes[0].requests[0].body["stream"] is True


async def test_async_healthy_stream(fakes: list[FakeProvider]) -> None:
    """astream yields the same deltas and final Response as stream."""
    deltas: list[str] = []
    router = router_for(fakes)
    resp = await adrain(router, deltas, max_tokens=64)
    await router.aclose()
    assert deltas == WORDS
    assert resp.text == "Hello from primary"
    assert resp.usage.output_tokens == 3
    assert resp.stop_reason == "end_turn"
    assert outcomes(resp.attempts) == [("primary", "ok", None, None)]


def test_nothing_is_sent_until_iteration_starts(fakes: list[FakeProvider]) -> None:
    """Opening the stream context sends no request; the response is None until exhausted."""
    with router_for(fakes) as router, router.stream(MSG) as s:
        assert fakes[0].request_count == 0
        assert s.response is None
        assert next(iter(s)) == "Hello "
        assert fakes[0].request_count == 1
        assert s.response is None


# --- before the first delta: failover as in complete() --------------------------------------


@pytest.mark.parametrize(
    ("mode", "error", "status"),
    [
        (Status(529), "overloaded", 529),
        (Reset(), "connect", None),
        *[
            (StreamError("overloaded_error", after_events=n), "overloaded", 529)
            for n in range(FIRST_DELTA + 1)
        ],
    ],
    ids=["529", "reset", *[f"error-event-after-{n}" for n in range(FIRST_DELTA + 1)]],
)
def test_failure_before_first_delta_fails_over(
    fakes: list[FakeProvider], mode: Mode, error: str, status: int | None
) -> None:
    """Before any text, a failure is retried per policy, then the next endpoint streams."""
    fakes[0].set_mode(mode)
    deltas: list[str] = []
    with router_for(fakes, retry={"attempts": 3}) as router:
        resp = drain(router, deltas)
    assert deltas == ["Hello ", "from ", "secondary"]
    assert resp.text == "Hello from secondary"
    assert resp.endpoint == "secondary"
    assert fakes[0].request_count == 3
    assert outcomes(resp.attempts) == [
        *[("primary", "error", error, status)] * 3,
        ("secondary", "ok", None, None),
    ]


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_cut_before_first_delta_is_retried_like_complete(
    fakes: list[FakeProvider], reset: bool
) -> None:
    """A connection cut before any text is retried per policy, as complete() retries it."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA - 1, reset=reset))
    with router_for(fakes, retry={"attempts": 3}) as router:
        resp = drain(router, [])
    assert resp.endpoint == "secondary"
    assert fakes[0].request_count == 3


async def test_async_failure_before_first_delta_fails_over(fakes: list[FakeProvider]) -> None:
    """astream fails over before the first delta with the same retries."""
    fakes[0].set_mode(StreamError("overloaded_error", after_events=2))
    deltas: list[str] = []
    router = router_for(fakes, retry={"attempts": 3})
    resp = await adrain(router, deltas)
    await router.aclose()
    assert deltas == ["Hello ", "from ", "secondary"]
    assert fakes[0].request_count == 3
    assert [a.status_code for a in resp.attempts] == [529, 529, 529, None]


# --- after the first delta: StreamInterrupted, never a silent end ---------------------------


@pytest.mark.parametrize(
    ("mode", "partial", "error", "status"),
    [
        (CutStream(after_events=FIRST_DELTA + 1), "Hello ", "stream_cut", None),
        (CutStream(after_events=FIRST_DELTA + 2, reset=True), "Hello from ", "stream_cut", None),
        (
            StreamError("overloaded_error", after_events=FIRST_DELTA + 2),
            "Hello from ",
            "overloaded",
            529,
        ),
        # Every word arrived but the stream never finished: still not an answer.
        (CutStream(after_events=FIRST_DELTA + 3), "Hello from primary", "stream_cut", None),
    ],
    ids=["cut", "cut-reset", "error-event", "cut-before-message-stop"],
)
def test_break_after_text_raises_stream_interrupted(
    fakes: list[FakeProvider], mode: Mode, partial: str, error: str, status: int | None
) -> None:
    """A break after text raises StreamInterrupted with the exact partial text; no failover."""
    fakes[0].set_mode(mode)
    deltas: list[str] = []
    router = router_for(fakes, retry={"attempts": 3})
    with pytest.raises(StreamInterrupted) as info:
        drain(router, deltas)
    assert "".join(deltas) == partial
    assert info.value.partial_text == partial
    assert outcomes(info.value.attempts) == [("primary", "error", error, status)]
    assert info.value.__cause__ is not None
    assert fakes[0].request_count == 1  # no retry: the text is already out
    assert fakes[1].request_count == 0
    snapshot = router.breaker("primary").snapshot()
    assert snapshot.total_failures == 1
    assert snapshot.consecutive_failures == 1
    router.close()


def test_interrupted_streams_open_the_breaker(fakes: list[FakeProvider]) -> None:
    """Interruptions count against the breaker like any failure: it opens at the threshold."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 1))
    with router_for(fakes, breaker={"failure_threshold": 2}) as router:
        for _ in range(2):
            with pytest.raises(StreamInterrupted):
                drain(router, [])
        assert router.breaker("primary").state == "open"
        deltas: list[str] = []
        resp = drain(router, deltas)
    assert deltas == ["Hello ", "from ", "secondary"]
    assert outcomes(resp.attempts)[0] == ("primary", "skipped", "breaker_open", None)


async def test_async_break_after_text_raises(fakes: list[FakeProvider]) -> None:
    """astream raises StreamInterrupted with the partial text too."""
    fakes[0].set_mode(StreamError("overloaded_error", after_events=FIRST_DELTA + 1))
    deltas: list[str] = []
    router = router_for(fakes)
    with pytest.raises(StreamInterrupted) as info:
        await adrain(router, deltas)
    await router.aclose()
    assert deltas == ["Hello "]
    assert info.value.partial_text == "Hello "
    assert outcomes(info.value.attempts) == [("primary", "error", "overloaded", 529)]
    assert fakes[1].request_count == 0


# --- on_interrupt: continue ----------------------------------------------------------------


def test_continue_resumes_on_the_next_endpoint(fakes: list[FakeProvider]) -> None:
    """With on_interrupt: continue, the next endpoint continues from the partial as prefill."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))
    fakes[1].text = "continued here"
    deltas: list[str] = []
    with router_for(fakes, route={"on_interrupt": "continue"}) as router:
        resp = drain(router, deltas, max_tokens=64)
    assert deltas == ["Hello ", "from ", "continued ", "here"]
    assert resp.text == "Hello from continued here"
    assert resp.endpoint == "secondary"
    assert outcomes(resp.attempts) == [
        ("primary", "error", "stream_cut", None),
        ("secondary", "ok", None, None),
    ]
    # The partial goes as the final assistant message, trailing white space stripped.
    assert fakes[1].requests[-1].body["messages"] == [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "Hello from"},
    ]
    # Usage is the last endpoint's: the continuation's words, the prefill counted as input.
    assert resp.usage.output_tokens == 2
    assert resp.usage.input_tokens == 4


async def test_async_continue_resumes_on_the_next_endpoint(fakes: list[FakeProvider]) -> None:
    """astream continues a broken stream on the next endpoint too."""
    fakes[0].set_mode(StreamError("overloaded_error", after_events=FIRST_DELTA + 1))
    fakes[1].text = "there"
    deltas: list[str] = []
    router = router_for(fakes, route={"on_interrupt": "continue"})
    resp = await adrain(router, deltas)
    await router.aclose()
    assert deltas == ["Hello ", "there"]
    assert resp.endpoint == "secondary"
    assert fakes[1].requests[-1].body["messages"][-1] == {"role": "assistant", "content": "Hello"}


def test_continue_logs_the_failover(
    fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    """Continuing on the next endpoint is a failover, logged at INFO like any other."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))
    caplog.set_level(logging.INFO, logger="failover")
    with router_for(fakes, route={"on_interrupt": "continue"}) as router:
        drain(router, [])
    failovers = [r for r in caplog.records if getattr(r, "failover_next_endpoint", None)]
    assert [(r.failover_endpoint, r.failover_next_endpoint) for r in failovers] == [
        ("primary", "secondary")
    ]


def test_continue_with_no_endpoint_left_raises(fakes: list[FakeProvider]) -> None:
    """When every remaining endpoint breaks too, continuation ends in StreamInterrupted."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))
    fakes[1].text = "and more words"
    fakes[1].set_mode(CutStream(after_events=FIRST_DELTA + 1))
    deltas: list[str] = []
    router = router_for(fakes[:2], route={"on_interrupt": "continue"})
    with pytest.raises(StreamInterrupted) as info:
        drain(router, deltas)
    router.close()
    assert deltas == ["Hello ", "from ", "and "]
    assert info.value.partial_text == "Hello from and "
    assert outcomes(info.value.attempts) == [
        ("primary", "error", "stream_cut", None),
        ("secondary", "error", "stream_cut", None),
    ]


def test_continue_rejected_by_the_next_endpoint_keeps_the_partial(
    fakes: list[FakeProvider],
) -> None:
    """A 400 to the continuation (say, no prefill support) is StreamInterrupted with the
    text so far, not a RequestError that would drop it; the third endpoint is not tried."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))
    fakes[1].set_mode(Status(400))
    deltas: list[str] = []
    router = router_for(fakes, route={"on_interrupt": "continue"})
    with pytest.raises(StreamInterrupted, match="secondary rejected the continuation") as info:
        drain(router, deltas)
    router.close()
    assert deltas == ["Hello ", "from "]
    assert info.value.partial_text == "Hello from "
    assert outcomes(info.value.attempts) == [
        ("primary", "error", "stream_cut", None),
        ("secondary", "error", "invalid_request", 400),
    ]
    assert fakes[2].request_count == 0


async def test_async_continue_rejected_keeps_the_partial(fakes: list[FakeProvider]) -> None:
    """astream: the same."""
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))
    fakes[1].set_mode(Status(422))
    deltas: list[str] = []
    router = router_for(fakes, route={"on_interrupt": "continue"})
    with pytest.raises(StreamInterrupted) as info:
        await adrain(router, deltas)
    await router.aclose()
    assert info.value.partial_text == "Hello from "
    assert fakes[2].request_count == 0


def test_continue_never_falls_back_to_the_cache(fakes: list[FakeProvider]) -> None:
    """After text, a failed continuation raises StreamInterrupted even with a cached answer."""
    route = {"on_interrupt": "continue", "cache": {"ttl": "1h"}}
    router = router_for(fakes, route=route, retry={"attempts": 1})
    assert drain(router, []).text == "Hello from primary"  # now cached
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))
    for fake in fakes[1:]:
        fake.set_mode(Status(503))
    deltas: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        drain(router, deltas)
    router.close()
    assert deltas == ["Hello ", "from "]
    assert info.value.partial_text == "Hello from "
    assert [a.endpoint for a in info.value.attempts] == ["primary", "secondary", "backup"]


# --- time: deadline to the first delta, stream_idle after it --------------------------------


def test_stream_idle_cuts_a_stall_between_deltas(fakes: list[FakeProvider]) -> None:
    """A gap between deltas longer than stream_idle is a timeout, raised as an interruption."""
    fakes[0].set_mode(TRICKLE)
    router = router_for(fakes, timeout={"stream_idle": "100ms"})
    deltas: list[str] = []
    started = time.monotonic()
    with pytest.raises(StreamInterrupted) as info:
        drain(router, deltas)
    elapsed = time.monotonic() - started
    router.close()
    assert deltas == ["Hello ", "from "]  # cut at the stall, before the last word
    assert outcomes(info.value.attempts) == [("primary", "error", "stream_idle", None)]
    assert info.value.attempts[0].latency < 0.5 + 0.25  # generous: cut before the next write
    assert elapsed < 2.0
    assert fakes[1].request_count == 0


def test_a_delivering_stream_may_run_past_the_deadline(fakes: list[FakeProvider]) -> None:
    """The deadline bounds the first delta only; a stream that keeps delivering finishes."""
    fakes[0].set_mode(TRICKLE)
    # one endpoint: it has the whole deadline for its first delta
    router = router_for(fakes[:1], deadline="750ms", timeout={"stream_idle": "2s"})
    deltas: list[str] = []
    started = time.monotonic()
    resp = drain(router, deltas)
    elapsed = time.monotonic() - started
    router.close()
    assert deltas == WORDS
    assert resp.endpoint == "primary"
    assert elapsed > 0.75  # structural: four writes 250 ms apart


@pytest.mark.parametrize(
    "mode", [Blackhole(), Trickle(interval=0.05, chunk=1)], ids=["blackhole", "trickle"]
)
def test_deadline_bounds_time_to_first_delta(fakes: list[FakeProvider], mode: Mode) -> None:
    """With no endpoint producing a delta, the stream ends at its deadline: DeadlineExceeded."""
    for fake in fakes:
        fake.set_mode(mode)
    deltas: list[str] = []
    with router_for(fakes, deadline="300ms", timeout={"read": "10s"}) as router:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            drain(router, deltas)
        elapsed = time.monotonic() - started
    assert deltas == []
    assert elapsed < 0.3 + 0.3  # generous: the bench measures the real overshoot
    assert fakes[0].request_count == 1  # its share of the deadline, then the next one's


# --- the fallback cache, and closing early --------------------------------------------------


def test_cached_answer_is_yielded_as_one_delta(fakes: list[FakeProvider]) -> None:
    """All endpoints failing before any text: the route's cached answer is one delta."""
    router = router_for(fakes, route={"cache": {"ttl": "1h"}})
    assert router.complete(MSG, max_tokens=64).text == "Hello from primary"
    for fake in fakes:
        fake.set_mode(Status(503))
    deltas: list[str] = []
    resp = drain(router, deltas, max_tokens=64)
    router.close()
    assert deltas == ["Hello from primary"]
    assert resp.from_cache is True
    assert resp.endpoint == "primary"
    assert resp.cache_age is not None
    assert resp.cache_age >= 0
    assert [a.outcome for a in resp.attempts] == ["error"] * 6


async def test_async_cached_answer_is_yielded_as_one_delta(fakes: list[FakeProvider]) -> None:
    """astream serves the cached answer as one delta too."""
    router = router_for(fakes, route={"cache": {"ttl": "1h"}})
    assert (await adrain(router, [])).text == "Hello from primary"
    for fake in fakes:
        fake.set_mode(Reset())
    deltas: list[str] = []
    resp = await adrain(router, deltas)
    await router.aclose()
    assert deltas == ["Hello from primary"]
    assert resp.from_cache is True


def test_serve_fresh_streams_the_cached_answer_without_a_call(fakes: list[FakeProvider]) -> None:
    """With serve: fresh, a stream within ttl is the cached answer as one delta, no request."""
    router = router_for(fakes, route={"cache": {"ttl": "1h", "serve": "fresh"}})
    assert drain(router, []).from_cache is False
    deltas: list[str] = []
    resp = drain(router, deltas)
    router.close()
    assert deltas == ["Hello from primary"]
    assert resp.from_cache is True
    assert resp.attempts == ()
    assert [f.request_count for f in fakes] == [1, 0, 0]


def test_all_failing_without_a_cache_raises_all_endpoints_failed(
    fakes: list[FakeProvider],
) -> None:
    """No text and no cached answer: the stream raises AllEndpointsFailed, not an interrupt."""
    for fake in fakes:
        fake.set_mode(Status(503))
    with router_for(fakes) as router, pytest.raises(AllEndpointsFailed) as info:
        drain(router, [])
    assert not isinstance(info.value, DeadlineExceeded)
    assert len(info.value.attempts) == 6


def test_breaking_out_early_releases_the_trial_permit(fakes: list[FakeProvider]) -> None:
    """Leaving the loop early closes the stream, records no failure, returns the permit."""
    clock = VirtualClock()
    fakes[0].set_mode(Status(500))
    router = router_for(fakes, clock=clock, retry={"attempts": 1}, breaker={"failure_threshold": 1})
    router.complete(MSG)
    breaker = router.breaker("primary")
    assert breaker.state == "open"
    clock.advance(30)
    fakes[0].set_mode(Ok())
    with router.stream(MSG) as s:
        for text in s:
            assert text == "Hello "
            break
    snapshot = breaker.snapshot()
    assert snapshot.state == "half_open"
    assert snapshot.trials_in_flight == 0
    assert snapshot.total_failures == 1  # only the 500 that opened it
    assert s.response is None
    # The permit came back, so the next trial is admitted and closes the breaker.
    assert router.complete(MSG).endpoint == "primary"
    assert breaker.state == "closed"
    router.close()


async def test_async_breaking_out_early_records_nothing(fakes: list[FakeProvider]) -> None:
    """Leaving an astream early records neither success nor failure."""
    router = router_for(fakes)
    async with router.astream(MSG) as s:
        async for _text in s:
            break
    snapshot = router.breaker("primary").snapshot()
    assert (snapshot.total_successes, snapshot.total_failures) == (0, 0)
    assert s.response is None
    await router.aclose()


# --- litellm endpoints ---------------------------------------------------------------------


def test_litellm_healthy_stream(fakes: list[FakeProvider]) -> None:
    """Through litellm, a healthy stream yields the words and a normalized Response."""
    deltas: list[str] = []
    with router_for(fakes, litellm=True) as router:
        resp = drain(router, deltas, max_tokens=64)
    assert deltas == WORDS
    assert resp.text == "Hello from primary"
    assert resp.provider == "litellm"
    assert resp.usage.output_tokens == 3
    assert resp.stop_reason == "stop"
    assert fakes[0].requests[0].path == "/v1/chat/completions"


async def test_litellm_async_healthy_stream(fakes: list[FakeProvider]) -> None:
    """Through litellm, astream yields the same words."""
    deltas: list[str] = []
    router = router_for(fakes, litellm=True)
    resp = await adrain(router, deltas)
    await router.aclose()
    assert deltas == WORDS
    assert resp.provider == "litellm"


@pytest.mark.parametrize(
    ("mode", "error", "status"),
    [(Status(529), "overloaded", 529), (Reset(), "connect", None)],
    ids=["529", "reset"],
)
def test_litellm_failure_before_first_delta_fails_over(
    fakes: list[FakeProvider], mode: Mode, error: str, status: int | None
) -> None:
    """Through litellm, a failure before any text is retried per policy, then fails over."""
    fakes[0].set_mode(mode)
    deltas: list[str] = []
    with router_for(fakes, litellm=True, retry={"attempts": 3}) as router:
        resp = drain(router, deltas)
    assert deltas == ["Hello ", "from ", "secondary"]
    assert fakes[0].request_count == 3
    assert outcomes(resp.attempts) == [
        *[("primary", "error", error, status)] * 3,
        ("secondary", "ok", None, None),
    ]


def test_litellm_error_event_before_first_delta_counts_as_its_status(
    fakes: list[FakeProvider],
) -> None:
    """Through litellm, an overloaded_error event before any text is a retried 529."""
    fakes[0].set_mode(StreamError("overloaded_error", after_events=OPENAI_FIRST_DELTA))
    with router_for(fakes, litellm=True, retry={"attempts": 3}) as router:
        resp = drain(router, [])
    assert resp.endpoint == "secondary"
    assert fakes[0].request_count == 3
    assert [a.status_code for a in resp.attempts[:3]] == [529, 529, 529]


@pytest.mark.parametrize(
    ("mode", "partial"),
    [
        (CutStream(after_events=OPENAI_FIRST_DELTA + 1), "Hello "),
        (CutStream(after_events=OPENAI_FIRST_DELTA + 2, reset=True), "Hello from "),
        (StreamError("overloaded_error", after_events=OPENAI_FIRST_DELTA + 2), "Hello from "),
    ],
    ids=["cut", "cut-reset", "error-event"],
)
def test_litellm_break_after_text_raises(
    fakes: list[FakeProvider], mode: Mode, partial: str
) -> None:
    """Through litellm, a break after text raises StreamInterrupted with the partial text."""
    fakes[0].set_mode(mode)
    deltas: list[str] = []
    router = router_for(fakes, litellm=True)
    with pytest.raises(StreamInterrupted) as info:
        drain(router, deltas)
    assert "".join(deltas) == partial
    assert info.value.partial_text == partial
    assert [(a.endpoint, a.outcome) for a in info.value.attempts] == [("primary", "error")]
    assert fakes[1].request_count == 0
    assert router.breaker("primary").snapshot().total_failures == 1
    router.close()


def test_litellm_deadline_bounds_time_to_first_delta(fakes: list[FakeProvider]) -> None:
    """Through litellm, a trickling server is cut at the deadline before the first delta."""
    fakes[0].set_mode(Trickle(interval=0.05, chunk=1))
    # Bounds this test whatever the code does: the fake goes away after 1 s.
    stopper = threading.Timer(1.0, fakes[0].stop)
    stopper.start()
    router = router_for(fakes[:1], litellm=True, deadline="300ms", timeout={"read": "10s"})
    started = time.monotonic()
    try:
        with pytest.raises(DeadlineExceeded):
            drain(router, [])
        elapsed = time.monotonic() - started
    finally:
        stopper.cancel()
        router.close()
    assert elapsed < 0.3 + 0.3
