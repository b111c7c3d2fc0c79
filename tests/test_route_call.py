"""The call loop's rules (issues 13 and 16) on loopback fakes with the real SDKs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import anthropic
import pytest

from failover import AllEndpointsFailed, DeadlineExceeded, RequestError, Router, StreamInterrupted
from failover._clock import VirtualClock
from failover._events import Event, PanicTrial
from failover.instrumentation import LoggingListener
from failover.testing import Blackhole, CutStream, FakeProvider, Latency, Ok, Status, Trickle

from _support import make_policy

MSG = [{"role": "user", "content": "hello there"}]

# Anthropic stream events as the fake sends them: message_start, content_block_start and
# ping (0-2), then one content_block_delta per word (3, 4, 5).
FIRST_DELTA = 3
# 300 bytes every 250 ms: the headers come in the first write, the first word only in the
# second (~0.25 s), the next words later.
SLOW_FIRST_TOKEN = Trickle(interval=0.25, chunk=300)


def router_for(
    fakes: list[FakeProvider],
    *,
    litellm: tuple[str, ...] = (),
    route: dict[str, Any] | None = None,
    endpoints: dict[str, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Router:
    """A one-route router over ``fakes`` in order; names in ``litellm`` go through LiteLLM."""
    urls = {f.name: f.openai_url if f.name in litellm else f.url for f in fakes}
    providers = dict.fromkeys(litellm, "litellm")
    clock = kwargs.pop("clock", None)
    listeners = kwargs.pop("listeners", None)
    policy = make_policy(urls, providers=providers, **kwargs)
    policy["routes"]["chat"].update(route or {})
    for name, extra in (endpoints or {}).items():
        policy["endpoints"][name].update(extra)
    return Router.from_dict(policy, clock=clock, listeners=listeners)


def outcomes(attempts: Any) -> list[tuple[str, str, str | None]]:
    return [(a.endpoint, a.outcome, a.error) for a in attempts]


def drain(router: Router, deltas: list[str], **params: Any) -> Any:
    """Stream MSG into ``deltas`` (kept on error); return the final Response."""
    with router.stream(MSG, **params) as s:
        for text in s:
            deltas.append(text)
    return s.response


# --- 1. readiness ----------------------------------------------------------------------------

READY = textwrap.dedent(
    """\
    import sys, threading, time
    import failover
    heavy = ("anthropic", "litellm")
    assert not [m for m in heavy if m in sys.modules], "import failover imported an SDK"
    from failover import Router
    claude, gpt = sys.argv[1], sys.argv[2]
    def ep(provider, model, url):
        return {"provider": provider, "model": model, "api_key": "k", "base_url": url}
    policy = {
        "version": 1,
        "defaults": {"timeout": {"connect": "1s", "read": "1500ms"}},
        "endpoints": {
            "claude": ep("anthropic", "claude-test", claude),
            "gpt": ep("litellm", "openai/fake-model", gpt),
        },
        "routes": {
            "a": {"endpoints": ["claude"], "deadline": "1500ms"},
            "b": {"endpoints": ["gpt"], "deadline": "1500ms"},
        },
    }
    started = time.perf_counter()
    router = Router.from_dict(policy)
    built = time.perf_counter() - started
    assert all(m in sys.modules for m in heavy), "the constructor left an SDK unimported"
    ready = set(sys.modules)
    results = []
    def call(i):
        try:
            t0 = time.perf_counter()
            resp = router.complete([{"role": "user", "content": "hi"}], route="ab"[i % 2])
            results.append(("ok", resp.endpoint, time.perf_counter() - t0))
        except Exception as exc:
            results.append(("error", repr(exc), 0.0))
    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    router.close()
    bad = [r for r in results if r[0] != "ok"]
    print(f"built {built:.3f} s; slowest call {max(r[2] for r in results):.3f} s")
    assert len(results) == 16 and not bad, bad
    assert {r[1] for r in results} == {"claude", "gpt"}
    sdk = ("anthropic", "litellm", "openai", "httpx2", "httpcore2", "h11", "h2", "anyio")
    late = sorted(m for m in set(sys.modules) - ready if m.split(".")[0] in sdk)
    assert not late, f"the first calls still imported {late}"
    """
)


def test_a_fresh_process_answers_its_first_calls() -> None:
    """A fresh process's first 16 concurrent calls (anthropic and litellm) meet a 1.5 s
    deadline: the constructor imported the SDKs (and what they import on a first request);
    `import failover` imported none."""
    with FakeProvider(name="claude") as claude, FakeProvider(name="gpt") as gpt:
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        done = subprocess.run(
            [sys.executable, "-c", READY, claude.url, gpt.openai_url],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert claude.request_count == 8
        assert gpt.request_count == 8


# --- 2. deadline shares --------------------------------------------------------------------


def test_a_silent_endpoint_gets_only_its_share_of_the_deadline() -> None:
    """[silent, healthy], read 5 s, 2 attempts, deadline 3 s: the silent one is tried once
    for its share (1.5 s), then the healthy one answers, well inside the deadline."""
    with FakeProvider("silent", mode=Blackhole()) as silent, FakeProvider("healthy") as healthy:
        router = router_for(
            [silent, healthy], deadline="3s", timeout={"read": "5s"}, retry={"attempts": 2}
        )
        started = time.monotonic()
        resp = router.complete(MSG)
        elapsed = time.monotonic() - started
        router.close()
    assert resp.endpoint == "healthy"
    assert outcomes(resp.attempts) == [("silent", "error", "timeout"), ("healthy", "ok", None)]
    assert silent.request_count == 1  # a timeout fails over before it is retried
    assert 1.4 < elapsed < 2.5  # structural lower bound: its share is 3 s / 2


def test_the_last_endpoint_gets_all_the_time_left() -> None:
    """After a quick failure on the first endpoint, a slow last one may use the rest of the
    deadline (1.4 s of 2 s), more than an even share (1 s) would give it."""
    with FakeProvider("down", mode=Status(503)) as down, FakeProvider("slow") as slow:
        slow.set_mode(Latency(1.4))
        router = router_for([down, slow], deadline="2s", timeout={"read": "5s"})
        resp = router.complete(MSG)
        router.close()
    assert resp.endpoint == "slow"
    assert down.request_count == 2  # not a timeout: retried as usual


def test_an_endpoint_before_only_open_breakers_is_the_last() -> None:
    """Endpoints behind an open breaker do not count as remaining: the slow first endpoint
    keeps the whole deadline rather than timing out at half of it."""
    with FakeProvider("slow", mode=Latency(1.4)) as slow, FakeProvider("other") as other:
        router = router_for([slow, other], deadline="2s", timeout={"read": "5s"})
        router.breaker("other").force_open()
        resp = router.complete(MSG)
        router.close()
    assert resp.endpoint == "slow"
    assert other.request_count == 0


# --- 3. timeout.first_token ----------------------------------------------------------------


@pytest.mark.parametrize("level", ["defaults", "endpoint", "route"])
def test_first_token_fails_a_slow_stream_over(level: str) -> None:
    """Headers at once, first token slow: past timeout.first_token (at any level) the
    stream fails over without a retry, and the attempt says first_token."""
    with FakeProvider("primary", mode=SLOW_FIRST_TOKEN) as primary, FakeProvider("b") as b:
        limit = {"first_token": "100ms"}
        kwargs: dict[str, Any] = {"retry": {"attempts": 2}}
        if level == "defaults":
            kwargs["timeout"] = limit
        elif level == "endpoint":
            kwargs["endpoints"] = {"primary": {"timeout": limit}}
        else:
            kwargs["route"] = {"timeout": limit}
        router = router_for([primary, b], **kwargs)
        deltas: list[str] = []
        started = time.monotonic()
        resp = drain(router, deltas)
        elapsed = time.monotonic() - started
        router.close()
    assert deltas == ["Hello ", "from ", "b"]
    assert outcomes(resp.attempts) == [("primary", "error", "first_token"), ("b", "ok", None)]
    assert primary.request_count == 1
    assert elapsed < 0.1 + 1.0


def test_first_token_does_not_bound_a_whole_completion() -> None:
    """first_token applies to streams only: complete() waits for the trickled body."""
    with FakeProvider("primary", mode=SLOW_FIRST_TOKEN) as primary, FakeProvider("b") as b:
        router = router_for([primary, b], timeout={"first_token": "100ms"})
        resp = router.complete(MSG)
        router.close()
    assert resp.endpoint == "primary"
    assert b.request_count == 0


# --- 4. panic trial ------------------------------------------------------------------------


def test_panic_trial_goes_to_the_breaker_open_longest() -> None:
    """Every breaker open, nothing cached: no trial in the first tenth of reset_timeout;
    after it, one trial to the endpoint open longest, which closes it on success."""
    clock = VirtualClock()
    events: list[Event] = []
    with FakeProvider("a") as a, FakeProvider("b") as b:
        router = router_for(
            [a, b],
            clock=clock,
            listeners=[LoggingListener(), events.append],
            breaker={"reset_timeout": "10s", "half_open_max_calls": 1},
        )
        router.breaker("b").force_open()  # b first: it has been open longest
        clock.advance(0.5)
        router.breaker("a").force_open()
        clock.advance(0.4)  # b open 0.9 s < 1 s, a tenth of reset_timeout
        with pytest.raises(AllEndpointsFailed) as info:
            router.complete(MSG)
        assert outcomes(info.value.attempts) == [
            ("a", "skipped", "breaker_open"),
            ("b", "skipped", "breaker_open"),
        ]
        assert not [e for e in events if isinstance(e, PanicTrial)]
        clock.advance(0.2)  # b open 1.1 s, a only 0.6 s
        resp = router.complete(MSG)
        assert resp.endpoint == "b"
        assert outcomes(resp.attempts) == [
            ("a", "skipped", "breaker_open"),
            ("b", "skipped", "breaker_open"),
            ("b", "ok", None),
        ]
        assert (a.request_count, b.request_count) == (0, 1)
        assert router.breaker("b").state == "closed"
        assert router.breaker("a").state == "open"
        router.close()
    panics = [e for e in events if isinstance(e, PanicTrial)]
    assert [(e.route, e.endpoint) for e in panics] == [("chat", "b")]


def test_panic_trial_also_when_the_other_endpoints_failed() -> None:
    """The first endpoint fails on its own, the healthy second is skipped by a breaker
    opened a while ago: the call gets one trial there instead of failing."""
    clock = VirtualClock()
    with FakeProvider("down", mode=Status(503)) as down, FakeProvider("healthy") as healthy:
        router = router_for(
            [down, healthy],
            clock=clock,
            retry={"attempts": 1},
            breaker={"reset_timeout": "10s", "failure_threshold": 100},
        )
        router.breaker("healthy").force_open()
        clock.advance(1.5)
        resp = router.complete(MSG)
        router.close()
    assert resp.endpoint == "healthy"
    assert outcomes(resp.attempts) == [
        ("down", "error", "server"),
        ("healthy", "skipped", "breaker_open"),
        ("healthy", "ok", None),
    ]
    assert router.breaker("healthy").state == "closed"


def test_panic_trial_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    """The panic trial has its own INFO line on logger failover."""
    clock = VirtualClock()
    caplog.set_level(logging.INFO, logger="failover")
    with FakeProvider("a", mode=Status(503)) as a:
        router = router_for([a], clock=clock, breaker={"reset_timeout": "10s"})
        router.breaker("a").force_open()
        clock.advance(1.0)
        with pytest.raises(AllEndpointsFailed) as info:
            router.complete(MSG)
        router.close()
    # the trial is one request (no retry), and its failure reopens the breaker
    assert outcomes(info.value.attempts) == [
        ("a", "skipped", "breaker_open"),
        ("a", "error", "server"),
    ]
    assert a.request_count == 1
    assert router.breaker("a").state == "open"
    lines = [r for r in caplog.records if r.name == "failover" and "trial request" in r.message]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert lines[0].message.endswith("one trial request goes to a")


# --- 5. 400s by meaning --------------------------------------------------------------------

CONTEXT_WINDOW = {
    "anthropic-400": (Status(400, message="prompt is too long: 250000 tokens > 200000"), ()),
    "anthropic-413": (Status(413, error_type="request_too_large"), ()),
    "openai-400": (
        Status(
            400,
            error_type="invalid_request_error",
            message="This model's maximum context length is 8192 tokens (context_length_exceeded)",
        ),
        ("small",),
    ),
}


@pytest.mark.parametrize("case", list(CONTEXT_WINDOW))
def test_context_window_errors_fail_over_at_once_without_breaker_counts(case: str) -> None:
    """A request too long for one model goes to the next endpoint at once, uncounted."""
    mode, litellm = CONTEXT_WINDOW[case]
    with FakeProvider("small", mode=mode) as small, FakeProvider("large") as large:
        router = router_for([small, large], litellm=litellm, retry={"attempts": 3})
        resp = router.complete(MSG)
        snapshot = router.breaker("small").snapshot()
        router.close()
    assert resp.endpoint == "large"
    assert outcomes(resp.attempts) == [("small", "error", "context_window"), ("large", "ok", None)]
    assert small.request_count == 1
    assert (snapshot.total_failures, snapshot.consecutive_failures) == (0, 0)


@pytest.mark.parametrize("litellm", [(), ("a",)], ids=["anthropic", "litellm"])
def test_content_filter_refusal_is_a_request_error_with_the_reason(
    litellm: tuple[str, ...],
) -> None:
    """A content-filter refusal is wrong everywhere: RequestError carrying the reason."""
    mode = Status(400, message="content_policy_violation: the prompt was flagged (violence)")
    with FakeProvider("a", mode=mode) as a, FakeProvider("b") as b:
        router = router_for([a, b], litellm=litellm)
        with pytest.raises(RequestError) as info:
            router.complete(MSG)
        router.close()
    assert "violence" in str(info.value)
    assert outcomes(info.value.attempts) == [("a", "error", "content_filter")]
    assert (a.request_count, b.request_count) == (1, 0)


@pytest.mark.parametrize("code", [400, 422])
def test_other_400s_stay_request_errors(code: int) -> None:
    """Any other 400/422 is the caller's mistake: RequestError, no failover, no retry."""
    with (
        FakeProvider("a", mode=Status(code, message="max_tokens: bad")) as a,
        FakeProvider("b") as b,
    ):
        router = router_for([a, b])
        with pytest.raises(RequestError) as info:
            router.complete(MSG)
        snapshot = router.breaker("a").snapshot()
        router.close()
    assert info.value.status_code == code
    assert (a.request_count, b.request_count) == (1, 0)
    assert snapshot.total_failures == 0


# --- 6. retry budget -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "floor"), [({}, 10), ({"min_retries": 0}, 0)], ids=["default", "no-floor"]
)
def test_retries_stay_within_the_budget(budget: dict[str, Any], floor: int) -> None:
    """60 calls against a 529 endpoint with attempts=3: at most 1 + ratio requests per call
    (plus the floor), not 3; every call is still answered by the next endpoint."""
    calls = 60
    with FakeProvider("busy", mode=Status(529)) as busy, FakeProvider("spare") as spare:
        router = router_for(
            [busy, spare],
            clock=VirtualClock(),
            retry={"attempts": 3, "budget": budget},
            breaker={"failure_threshold": 1000},
        )
        for _ in range(calls):
            assert router.complete(MSG).endpoint == "spare"
        router.close()
    assert busy.request_count <= calls * (1 + 0.2) + floor
    assert busy.request_count >= calls  # every call tried it once
    assert spare.request_count == calls


# --- 7. failure kinds on streams -----------------------------------------------------------

KINDS = {
    "stream_cut": (CutStream(after_events=FIRST_DELTA + 1), {}, StreamInterrupted),
    "stream_idle": (SLOW_FIRST_TOKEN, {"timeout": {"stream_idle": "100ms"}}, StreamInterrupted),
    "deadline": (Blackhole(), {"deadline": "300ms", "timeout": {"read": "10s"}}, DeadlineExceeded),
    "first_token": (SLOW_FIRST_TOKEN, {"timeout": {"first_token": "100ms"}}, AllEndpointsFailed),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("litellm", [(), ("only",)], ids=["anthropic", "litellm"])
def test_stream_failures_are_labelled_as_what_they_are(kind: str, litellm: tuple[str, ...]) -> None:
    """A cut after text is stream_cut, a stall stream_idle, the deadline deadline, a slow
    first token first_token: never connect or a generic timeout."""
    mode, settings, error = KINDS[kind]
    if litellm and kind == "stream_cut":
        mode = CutStream(after_events=2)  # role chunk, first word
    with FakeProvider("only", mode=mode) as only:
        router = router_for([only], litellm=litellm, retry={"attempts": 1}, **settings)
        with pytest.raises(error) as info:
            drain(router, [])
        router.close()
    assert type(info.value) is error
    attempts: Any = info.value.attempts  # type: ignore[attr-defined]
    assert [a.error for a in attempts] == [kind]


# --- 8. continuation -----------------------------------------------------------------------


def cut_primary(fakes: list[FakeProvider]) -> None:
    fakes[0].set_mode(CutStream(after_events=FIRST_DELTA + 2))  # after "Hello ", "from "


@pytest.mark.parametrize(
    ("endpoints", "litellm"),
    [({"next": {"prefill": False}}, ()), ({}, ("next",))],
    ids=["prefill-false", "litellm-openai"],
)
def test_continue_never_sends_a_prefill_where_it_is_not_taken(
    endpoints: dict[str, dict[str, Any]], litellm: tuple[str, ...]
) -> None:
    """continue + a next endpoint that takes no prefill: text iteration raises
    StreamInterrupted with the partial text; nothing is sent to that endpoint."""
    with FakeProvider("primary") as primary, FakeProvider("next") as nxt:
        cut_primary([primary])
        router = router_for(
            [primary, nxt],
            litellm=litellm,
            endpoints=endpoints,
            route={"on_interrupt": "continue"},
        )
        deltas: list[str] = []
        with pytest.raises(StreamInterrupted) as info:
            drain(router, deltas)
        router.close()
    assert deltas == ["Hello ", "from "]
    assert info.value.partial_text == "Hello from "
    assert nxt.request_count == 0


@pytest.mark.parametrize(
    ("endpoints", "litellm"),
    [({"next": {"prefill": False}}, ()), ({}, ("next",)), ({}, ())],
    ids=["prefill-false", "litellm-openai", "anthropic"],
)
def test_restart_starts_the_answer_again_on_the_next_endpoint(
    endpoints: dict[str, dict[str, Any]], litellm: tuple[str, ...]
) -> None:
    """on_interrupt: restart sends the original messages to the next endpoint; iteration
    goes on with the new answer, and the Response holds only the new answer."""
    with FakeProvider("primary") as primary, FakeProvider("next") as nxt:
        cut_primary([primary])
        router = router_for(
            [primary, nxt], litellm=litellm, endpoints=endpoints, route={"on_interrupt": "restart"}
        )
        deltas: list[str] = []
        resp = drain(router, deltas)
        router.close()
    assert deltas == ["Hello ", "from ", "Hello ", "from ", "next"]
    assert resp.text == "Hello from next"
    assert resp.endpoint == "next"
    assert outcomes(resp.attempts) == [("primary", "error", "stream_cut"), ("next", "ok", None)]
    assert nxt.requests[-1].body["messages"] == MSG


def test_continue_on_a_prefill_endpoint_sends_the_partial() -> None:
    """continue still continues where the next endpoint takes a prefill (anthropic)."""
    with FakeProvider("primary") as primary, FakeProvider("next", text="more") as nxt:
        cut_primary([primary])
        router = router_for([primary, nxt], route={"on_interrupt": "continue"})
        resp = drain(router, [])
        router.close()
    assert resp.text == "Hello from more"
    assert nxt.requests[-1].body["messages"][-1] == {"role": "assistant", "content": "Hello from"}


def test_a_rejected_continuation_names_the_cut_and_keeps_its_cause() -> None:
    """The fallback's 400 to a prefill never hides the cut: the message names the cut and
    the partial text is kept."""
    with FakeProvider("primary") as primary, FakeProvider("next", mode=Status(400)) as nxt:
        cut_primary([primary])
        router = router_for([primary, nxt], route={"on_interrupt": "continue"})
        with pytest.raises(StreamInterrupted) as info:
            drain(router, [])
        router.close()
    error = info.value
    assert error.partial_text == "Hello from "
    assert "rejected the continuation" in str(error)
    assert "stream_cut" in str(error)
    assert nxt.request_count == 1


def test_a_rejected_continuation_has_the_cut_as_its_cause() -> None:
    """__cause__ of a rejected continuation is the original cut's cause, not the 400."""
    with FakeProvider("primary") as primary, FakeProvider("next", mode=Status(400)) as nxt:
        cut_primary([primary])
        router = router_for([primary, nxt], route={"on_interrupt": "continue"})
        with pytest.raises(StreamInterrupted) as info:
            drain(router, [])
        router.close()
    assert info.value.__cause__ is not None
    assert not isinstance(info.value.__cause__, anthropic.BadRequestError)


def test_restart_without_another_endpoint_raises() -> None:
    """restart with no endpoint left: StreamInterrupted with the partial text."""
    with FakeProvider("primary") as primary:
        cut_primary([primary])
        router = router_for([primary], route={"on_interrupt": "restart"})
        with pytest.raises(StreamInterrupted) as info:
            drain(router, [])
        router.close()
    assert info.value.partial_text == "Hello from "


def test_recovered_stream_after_ok_on_the_primary() -> None:
    """Sanity: a healthy primary streams its own answer under every on_interrupt."""
    with FakeProvider("primary", mode=Ok()) as primary, FakeProvider("next") as nxt:
        for choice in ("raise", "continue", "restart"):
            router = router_for([primary, nxt], route={"on_interrupt": choice})
            assert drain(router, []).text == "Hello from primary"
            router.close()
    assert nxt.request_count == 0
