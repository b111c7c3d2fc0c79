"""Failure kinds: what each one does, and how real provider errors are classified.

Every classification here comes from the real anthropic and litellm clients talking to
FakeProvider on loopback.
"""

# ruff: noqa: PT018 - paired facts about one failure read best as one assertion
from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Any

import pytest

from failover import AllEndpointsFailed, RequestError, Router
from failover._failures import KINDS, Failure, describe, failure_from_status
from failover.testing import FakeProvider, MalformedEvent, MalformedStream, Status

from _support import KEY, make_policy

MSG = [{"role": "user", "content": "hello there"}]

# kind: (retryable, is_request_error, fails_over, counts_against_breaker)
TABLE = {
    "connect": (True, False, True, True),
    "timeout": (True, False, True, True),
    "first_token": (False, False, True, True),
    "stream_idle": (False, False, True, True),
    "stream_cut": (False, False, True, True),
    "deadline": (False, False, True, True),
    "request_timeout": (True, False, True, True),
    "rate_limited": (True, False, True, True),
    "server": (True, False, True, True),
    "overloaded": (True, False, True, True),
    "auth": (False, False, True, True),
    "not_found": (False, False, True, True),
    "misconfigured": (False, False, True, True),
    "client": (False, False, True, True),
    "invalid_request": (False, True, False, False),
    "context_window": (False, False, True, False),
    "content_filter": (False, True, False, False),
    "unsupported": (False, False, True, False),
    "unknown": (False, False, True, True),
}


def test_every_kind_has_its_properties_and_a_message() -> None:
    """The failure table: retry, stop the route, fail over, breaker count; one line each."""
    assert set(KINDS) == set(TABLE)
    for kind, expected in TABLE.items():
        failure = Failure(kind)  # type: ignore[arg-type]
        got = (
            failure.retryable,
            failure.is_request_error,
            failure.fails_over,
            failure.counts_against_breaker,
        )
        assert got == expected, kind
        assert describe(kind) and describe(kind) != kind
        assert Failure(kind, detail="x").message.endswith(": x")  # type: ignore[arg-type]


def test_statuses_map_to_kinds() -> None:
    """413 is a context-window failure; 400/422 invalid; 401/403 auth; 5xx server."""
    expect = {400: "invalid_request", 422: "invalid_request", 413: "context_window",
              401: "auth", 403: "auth", 404: "not_found", 408: "request_timeout",
              429: "rate_limited", 500: "server", 503: "server", 529: "overloaded",
              418: "client"}  # fmt: skip
    for status, kind in expect.items():
        assert failure_from_status(status).kind == kind, status


def _anthropic(fake: FakeProvider, key: str | None = KEY) -> Any:
    from failover.policy._model import EndpointPolicy
    from failover.providers import make_provider

    fields: dict[str, Any] = {"name": "ep", "provider": "anthropic", "model": "claude-test"}
    fields["base_url"] = fake.url
    ep = EndpointPolicy(**fields, api_key=None)
    if key is not None:
        ep = EndpointPolicy(**fields, api_key=_secret(key))
    return make_provider(ep)


def _litellm(fake: FakeProvider, key: str | None = KEY, model: str = "openai/fake-model") -> Any:
    from failover.policy._model import EndpointPolicy
    from failover.providers import make_provider

    fields: dict[str, Any] = {"name": "ep", "provider": "litellm", "model": model}
    fields["base_url"] = fake.openai_url if model.startswith("openai/") else fake.url
    return make_provider(EndpointPolicy(**fields, api_key=None if key is None else _secret(key)))


def _secret(value: str) -> Any:
    from failover.policy._secret import Secret

    return Secret(value)


def _call(messages: list[dict[str, Any]] = MSG, **params: Any) -> Any:
    from failover.providers import ProviderRequest

    return ProviderRequest(messages, {"max_tokens": 16, **params}, 1.0, 2.0)


def _failure_of(provider: Any, call: Any, stream: bool = False) -> Failure:
    from failover.providers import ProviderFailure

    run = (lambda: list(provider.stream(call))) if stream else (lambda: provider.complete(call))
    with pytest.raises(ProviderFailure) as info:
        run()
    return info.value.failure


@pytest.mark.parametrize("make", [_anthropic, _litellm], ids=["anthropic", "litellm"])
@pytest.mark.parametrize(
    ("status", "error_type", "message", "kind"),
    [
        (400, "invalid_request_error", "prompt is too long: 300000 > 200000", "context_window"),
        (400, "invalid_request_error", "context_length_exceeded", "context_window"),
        (413, "request_too_large", "Request exceeds the maximum size", "context_window"),
        (400, "invalid_request_error", "content_policy_violation (violence)", "content_filter"),
        (400, "invalid_request_error", "max_tokens: must be positive", "invalid_request"),
        (401, "authentication_error", "invalid x-api-key", "auth"),
        (529, "overloaded_error", "Overloaded", "overloaded"),
    ],
)  # fmt: skip
def test_errors_are_classified_by_meaning(
    make: Any, status: int, error_type: str, message: str, kind: str
) -> None:
    """400s by what they mean: context window, content filter, invalid; on both clients."""
    with FakeProvider() as fake:
        fake.set_mode(Status(status, error_type=error_type, message=message))
        failure = _failure_of(make(fake), _call())
    assert failure.kind == kind
    if kind == "content_filter":
        assert "content_policy_violation" in failure.detail  # the provider's reason


@pytest.mark.parametrize("make", [_anthropic, _litellm], ids=["anthropic", "litellm"])
@pytest.mark.parametrize(
    "params",
    [{"temperature": float("nan")}, {"stop": [object()]}],
    ids=["nan", "object"],
)
def test_a_request_that_cannot_be_encoded_is_invalid_and_never_sent(
    make: Any, params: dict[str, Any]
) -> None:
    """NaN or a non-JSON value: invalid_request, status None, the parameter named, no request."""
    with FakeProvider() as fake:
        failure = _failure_of(make(fake), _call(**params))
        assert fake.request_count == 0
    assert failure.kind == "invalid_request"
    assert failure.status_code is None
    assert next(iter(params)) in failure.detail.replace("stop_sequences", "stop")
    assert "nothing was sent" in failure.detail


def test_caller_bugs_raise_request_error_at_once_without_breaker_counts() -> None:
    """Through the Router: RequestError, no request sent, no failover, breakers untouched."""
    with FakeProvider(name="a") as a, FakeProvider(name="b") as b:
        policy = make_policy({"a": a.url, "b": b.openai_url}, providers={"b": "litellm"})
        policy["defaults"]["breaker"] = {"failure_threshold": 1, "reset_timeout": "30s"}
        with Router.from_dict(policy) as router:
            for _ in range(3):
                with pytest.raises(RequestError) as info:
                    router.complete(MSG, max_tokens=8, temperature=float("nan"))
                assert "temperature" in str(info.value)
            assert a.request_count == 0 and b.request_count == 0
            assert [s.state for s in router.status()] == ["closed", "closed"]
            assert router.complete(MSG, max_tokens=8).endpoint == "a"
        policy["routes"]["chat"]["endpoints"] = ["b", "a"]
        with Router.from_dict(policy) as router:
            with pytest.raises(RequestError):
                router.complete(MSG, max_tokens=8, temperature=float("inf"))
            assert b.request_count == 0 and a.request_count == 1
            assert router.status()[0].state == "closed"


def test_missing_keys_are_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key: anthropic's in-process error and LiteLLM's 'Missing credentials' 500."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with FakeProvider() as fake:
        failures = [
            _failure_of(_anthropic(fake, key=None), _call()),
            _failure_of(_litellm(fake, key=None), _call()),
            _failure_of(_litellm(fake, key=None, model="anthropic/claude-test"), _call()),
        ]
        assert fake.request_count == 0
    for failure in failures:
        assert failure.kind == "misconfigured", failure
        assert not failure.retryable and failure.fails_over and failure.counts_against_breaker
        assert "key" in failure.detail.lower()


def test_unsupported_parameter_through_litellm_fails_over() -> None:
    """LiteLLM's UnsupportedParamsError: 'unsupported', not retried, fails over."""
    with FakeProvider() as fake:
        failure = _failure_of(
            _litellm(fake, model="anthropic/claude-test"), _call(logit_bias={"1": 1})
        )
        assert fake.request_count == 0
    assert failure.kind == "unsupported"
    assert failure.fails_over and not failure.counts_against_breaker and not failure.retryable


def test_missing_litellm_extra_is_misconfigured_and_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """litellm not importable: that endpoint fails as misconfigured, the next one answers."""
    import sys

    from failover.policy._model import EndpointPolicy
    from failover.providers import ProviderFailure, make_provider

    monkeypatch.delitem(sys.modules, "failover.providers._litellm", raising=False)
    monkeypatch.setitem(sys.modules, "litellm", None)  # import litellm -> ImportError
    provider = make_provider(EndpointPolicy(name="x", provider="litellm", model="openai/m"))
    with pytest.raises(ProviderFailure) as info:
        provider.complete(_call())
    assert info.value.failure.kind == "misconfigured"
    assert info.value.failure.detail == "litellm is not installed: pip install 'failover[litellm]'"
    with FakeProvider(name="a") as a, FakeProvider(name="b") as b:
        policy = make_policy({"a": a.openai_url, "b": b.url}, providers={"a": "litellm"})
        with Router.from_dict(policy) as router:
            resp = router.complete(MSG, max_tokens=8)
            stream_text = "".join(router.stream(MSG, max_tokens=8))
    assert resp.endpoint == "b" and stream_text == "Hello from b"
    assert resp.attempts[0].error == "misconfigured" and resp.attempts[0].retry == 0
    assert len(resp.attempts) == 2  # not retried


@pytest.mark.parametrize("make", [_anthropic, _litellm], ids=["anthropic", "litellm"])
def test_one_malformed_event_is_skipped_and_logged(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed SSE event in a healthy stream: skipped, WARNING with a countable field."""
    with FakeProvider() as fake:
        fake.set_mode(MalformedEvent(after_events=3))
        with caplog.at_level(logging.WARNING, logger="failover"):
            items = list(make(fake).stream(_call()))
    assert "".join(i for i in items if isinstance(i, str)) == "Hello from fake"
    records = [r for r in caplog.records if getattr(r, "failover_event", None) == "malformed_event"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING and records[0].failover_endpoint == "ep"  # type: ignore[attr-defined]


@pytest.mark.parametrize("make", [_anthropic, _litellm], ids=["anthropic", "litellm"])
def test_a_stream_of_only_malformed_events_fails(make: Any) -> None:
    """Nothing but malformed events: the stream fails (so the router fails over)."""
    with FakeProvider() as fake:
        fake.set_mode(MalformedStream(events=3))
        failure = _failure_of(make(fake), _call(), stream=True)
    assert failure.kind in ("stream_cut", "server")
    assert failure.fails_over


def test_malformed_only_primary_fails_over_in_a_stream() -> None:
    """Through the Router: a primary sending only malformed events, the secondary answers."""
    with FakeProvider(name="a") as a, FakeProvider(name="b") as b:
        a.set_mode(MalformedStream())
        policy = make_policy({"a": a.url, "b": b.url})
        with Router.from_dict(policy) as router, router.stream(MSG, max_tokens=8) as s:
            text = "".join(s)
    assert text == "Hello from b"


def test_litellm_banners_silenced_for_router_calls_only() -> None:
    """No 'Give Feedback' banner from the router's failing LiteLLM calls; user settings kept."""
    import litellm

    before = litellm.suppress_debug_info
    out, err = io.StringIO(), io.StringIO()
    with FakeProvider() as fake, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        fake.set_mode(Status(500))
        policy = make_policy({"a": fake.openai_url}, providers={"a": "litellm"})
        policy["defaults"]["breaker"]["failure_threshold"] = 100
        with Router.from_dict(policy) as router:
            for _ in range(2):
                with pytest.raises(AllEndpointsFailed):
                    router.complete(MSG, max_tokens=8)
            with pytest.raises(AllEndpointsFailed):
                "".join(router.stream(MSG, max_tokens=8))
        assert fake.request_count == 6
        # The application's own LiteLLM call still prints, as LiteLLM decides.
        with contextlib.suppress(Exception):
            litellm.completion(model="openai/m", api_base=fake.openai_url, api_key="k",
                               messages=MSG, max_retries=0)  # fmt: skip
    assert litellm.suppress_debug_info is before
    banner = "Give Feedback"
    own = out.getvalue().split(banner, 1)[0]
    assert banner not in err.getvalue()
    assert out.getvalue().count(banner) == (0 if before else 1)
    assert "LiteLLM.Info" not in own


def test_env_keys_untouched() -> None:
    """Classification never sets SDK environment variables."""
    assert "LITELLM_LOCAL_MODEL_COST_MAP" in os.environ
