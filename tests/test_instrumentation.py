"""The listeners in failover.instrumentation: spans, metrics, stats, the JSONL trace, config."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, generate_latest

from failover import AllEndpointsFailed, DeadlineExceeded, Router
from failover.instrumentation import (
    AttemptFinished,
    CallFinished,
    CallStarted,
    EndpointStats,
    JsonlTraceListener,
    Listener,
    LoggingListener,
    OpenTelemetryListener,
    PrometheusListener,
    StatsListener,
    _otel,
    _prometheus,
    listeners_from_config,
)
from failover.instrumentation._otel import provider_name
from failover.testing import Blackhole, FakeProvider, Status

from _support import KEY, make_policy

PROMPT = "the secret plans for tuesday"
MSG = [{"role": "user", "content": PROMPT}]
FALLBACK = {"ttl": "1h", "stale_if_error": "1h"}


def policy_for(fakes: list[FakeProvider], cache: bool = False, **kwargs: Any) -> dict[str, Any]:
    policy = make_policy({f.name: f.url for f in fakes}, **kwargs)
    if cache:
        policy["routes"]["chat"]["cache"] = FALLBACK
    return policy


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def attempt(endpoint: str, outcome: str = "ok", latency: float = 0.1, **kw: Any) -> AttemptFinished:
    """A synthetic AttemptFinished."""
    return AttemptFinished("chat", endpoint, "m", 0, outcome, latency, latency, **kw)


class Ticker:
    """A settable clock for the listeners that take one."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the package ------------------------------------------------------------------------------
def test_import_does_not_load_otel_or_prometheus() -> None:
    """Importing failover.instrumentation loads neither opentelemetry nor prometheus_client."""
    code = (
        "import sys, failover.instrumentation\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in"
        " ('opentelemetry', 'prometheus_client', 'anthropic', 'litellm')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- OpenTelemetry -----------------------------------------------------------------------------
def test_otel_call_span_with_attempt_children(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """One call span, one CLIENT child per attempt with GenAI and failover attributes."""
    provider, exporter = spans
    fakes[0].set_mode(Status(529))
    otel = OpenTelemetryListener(provider)
    with Router.from_dict(policy_for(fakes), listeners=[otel]) as router:
        resp = router.complete(MSG, max_tokens=32)
    finished = exporter.get_finished_spans()
    (call,) = by_name(finished, "failover.call chat")
    attempts = by_name(finished, "chat claude-test")
    assert len(finished) == 4
    assert call.kind is SpanKind.INTERNAL
    assert call.attributes is not None
    assert call.attributes["failover.route"] == "chat"
    assert call.attributes["failover.endpoint"] == "secondary"
    assert call.attributes["failover.attempts"] == 3
    assert call.attributes["failover.from_cache"] is False
    assert call.attributes["failover.outcome"] == "ok"
    assert call.status.status_code is StatusCode.UNSET
    assert call.context is not None
    for span in attempts:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == call.context.span_id
        assert span.context is not None
        assert span.context.trace_id == call.context.trace_id
    got = [dict(s.attributes or {}) for s in sorted(attempts, key=lambda s: s.start_time or 0)]
    assert [(a["failover.endpoint"], a["failover.attempt.retry"]) for a in got] == [
        ("primary", 0),
        ("primary", 1),
        ("secondary", 0),
    ]
    failed, ok = got[0], got[2]
    assert failed["gen_ai.operation.name"] == "chat"
    assert failed["gen_ai.provider.name"] == failed["gen_ai.system"] == "anthropic"
    assert failed["gen_ai.request.model"] == "claude-test"
    assert failed["failover.attempt.outcome"] == "error"
    assert failed["error.type"] == "overloaded"
    assert failed["http.response.status_code"] == 529
    assert "gen_ai.usage.input_tokens" not in failed
    assert ok["failover.attempt.outcome"] == "ok"
    assert "error.type" not in ok
    assert ok["gen_ai.usage.input_tokens"] == resp.usage.input_tokens
    assert ok["gen_ai.usage.output_tokens"] == resp.usage.output_tokens
    errored = [s for s in attempts if s.status.status_code is StatusCode.ERROR]
    assert len(errored) == 2
    names = [e.name for e in call.events]
    assert names == ["failover.retry", "failover.failover"]
    failover_event = dict(call.events[1].attributes or {})
    assert failover_event["failover.endpoint"] == "primary"
    assert failover_event["failover.next_endpoint"] == "secondary"
    assert failover_event["failover.reason"] == "overloaded"
    assert dict(call.events[0].attributes or {})["failover.retry.reason"] == "overloaded"
    assert otel._calls == {}  # nothing held once the call ended


def test_otel_breaker_changes_and_skips_are_call_span_events(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """The call that opens a breaker records it; a skipped endpoint is an event, not a span."""
    provider, exporter = spans
    fakes[0].set_mode(Status(500))
    policy = policy_for(fakes, retry={"attempts": 1}, breaker={"failure_threshold": 1})
    with Router.from_dict(policy, listeners=[OpenTelemetryListener(provider)]) as router:
        router.complete(MSG)
        router.complete(MSG)
    first, second = sorted(
        by_name(exporter.get_finished_spans(), "failover.call chat"),
        key=lambda s: s.start_time or 0,
    )
    breaker = next(e for e in first.events if e.name == "failover.breaker")
    got = dict(breaker.attributes or {})
    assert got.pop("failover.breaker.reason")
    assert got == {
        "failover.endpoint": "primary",
        "failover.breaker.old": "closed",
        "failover.breaker.new": "open",
    }
    skipped = next(e for e in second.events if e.name == "failover.attempt.skipped")
    assert dict(skipped.attributes or {})["failover.endpoint"] == "primary"
    assert dict(skipped.attributes or {})["error.type"] == "breaker_open"
    children = [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and second.context and s.parent.span_id == second.context.span_id
    ]
    assert [dict(s.attributes or {})["failover.endpoint"] for s in children] == ["secondary"]


def test_otel_failed_call_and_deadline(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A call that runs out of time is an ERROR span with error.type and a deadline event."""
    provider, exporter = spans
    for fake in fakes:
        fake.set_mode(Blackhole())
    policy = policy_for(fakes, deadline="300ms", retry={"attempts": 1})
    with (
        Router.from_dict(policy, listeners=[OpenTelemetryListener(provider)]) as router,
        pytest.raises(DeadlineExceeded),
    ):
        router.complete(MSG)
    (call,) = by_name(exporter.get_finished_spans(), "failover.call chat")
    assert call.status.status_code is StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "DeadlineExceeded"
    assert dict(call.attributes or {})["failover.outcome"] == "error"
    assert "failover.deadline" in [e.name for e in call.events]
    timeouts = by_name(exporter.get_finished_spans(), "chat claude-test")
    assert timeouts
    kinds = [dict(s.attributes or {})["error.type"] for s in timeouts]
    # the first endpoint times out at its share of the deadline; the last meets the deadline
    assert kinds[:-1] == ["timeout"] * (len(kinds) - 1)
    assert kinds[-1] == "deadline"


def test_otel_cache_answer_and_parent_span(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A call nests under the caller's span; an answer from the cache is marked on it."""
    provider, exporter = spans
    tracer = provider.get_tracer("app")
    policy = policy_for(fakes, cache=True, retry={"attempts": 1})
    with Router.from_dict(policy, listeners=[OpenTelemetryListener(provider)]) as router:
        router.complete(MSG)
        for fake in fakes:
            fake.set_mode(Status(503))
        with tracer.start_as_current_span("handle request") as outer:
            resp = router.complete(MSG)
    assert resp.from_cache
    calls = by_name(exporter.get_finished_spans(), "failover.call chat")
    cached = max(calls, key=lambda s: s.start_time or 0)
    assert cached.parent is not None
    assert cached.parent.span_id == outer.get_span_context().span_id
    assert dict(cached.attributes or {})["failover.from_cache"] is True
    event = next(e for e in cached.events if e.name == "failover.cache")
    assert dict(event.attributes or {})["failover.endpoint"] == "primary"


def test_otel_stream_is_traced(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A streamed call gets the same call span and attempt span."""
    provider, exporter = spans
    with (
        Router.from_dict(policy_for(fakes), listeners=[OpenTelemetryListener(provider)]) as router,
        router.stream(MSG) as stream,
    ):
        text = "".join(stream)
    assert text == "Hello from primary"
    (call,) = by_name(exporter.get_finished_spans(), "failover.call chat")
    assert dict(call.attributes or {})["failover.stream"] is True
    (child,) = by_name(exporter.get_finished_spans(), "chat claude-test")
    assert dict(child.attributes or {})["failover.attempt.outcome"] == "ok"


async def test_otel_async_calls_keep_their_own_spans(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """Concurrent acomplete calls: each attempt under its own call, breaker event included."""
    provider, exporter = spans
    fakes[0].set_mode(Status(500))
    policy = policy_for(fakes, retry={"attempts": 1}, breaker={"failure_threshold": 1})
    async with Router.from_dict(policy, listeners=[OpenTelemetryListener(provider)]) as router:
        await router.acomplete(MSG)  # opens primary's breaker
        await asyncio.gather(*(router.acomplete(MSG) for _ in range(5)))
    finished = exporter.get_finished_spans()
    calls = sorted(by_name(finished, "failover.call chat"), key=lambda s: s.start_time or 0)
    assert len(calls) == 6
    assert [e.name for e in calls[0].events] == ["failover.breaker", "failover.failover"]
    for call in calls:
        assert call.context is not None
        children = [
            s for s in finished if s.parent is not None and s.parent.span_id == call.context.span_id
        ]
        outcomes = [dict(s.attributes or {})["failover.attempt.outcome"] for s in children]
        assert outcomes == (["error", "ok"] if call is calls[0] else ["ok"])


def test_otel_threads_keep_their_own_spans(
    fakes: list[FakeProvider], spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """Calls from many threads through one listener: every attempt under its own call."""
    provider, exporter = spans
    otel = OpenTelemetryListener(provider)
    with Router.from_dict(policy_for(fakes), listeners=[otel]) as router:
        threads = [threading.Thread(target=router.complete, args=(MSG,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finished = exporter.get_finished_spans()
    calls = {s.context.span_id for s in by_name(finished, "failover.call chat") if s.context}
    parents = [s.parent.span_id for s in by_name(finished, "chat claude-test") if s.parent]
    assert len(calls) == 8
    assert sorted(parents) == sorted(calls)
    assert otel._calls == {}


def test_otel_unfinished_calls_are_bounded(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Calls that never finish are capped: the oldest are ended as abandoned, not kept."""
    provider, exporter = spans
    otel = OpenTelemetryListener(provider, max_open_calls=3)
    for call_id in range(1, 6):
        otel(CallStarted("chat", call_id, 10))
    assert list(otel._calls) == [3, 4, 5]
    abandoned = exporter.get_finished_spans()
    assert len(abandoned) == 2
    assert all(dict(s.attributes or {})["failover.abandoned"] is True for s in abandoned)
    otel(CallFinished("chat", None, "error", 1.0, 0, call_id=4, error="AllEndpointsFailed"))
    assert list(otel._calls) == [3, 5]


def test_otel_provider_name() -> None:
    """gen_ai.provider.name follows the GenAI well-known values, from LiteLLM's prefix too."""
    assert provider_name("anthropic", "claude-sonnet-4-5") == "anthropic"
    assert provider_name("litellm", "openai/gpt-4o-mini") == "openai"
    assert provider_name("litellm", "bedrock/anthropic.claude-3") == "aws.bedrock"
    assert provider_name("litellm", "ollama/llama3") == "ollama"
    assert provider_name("litellm", "gpt-4o") == "litellm"


def test_otel_is_a_noop_without_opentelemetry(
    fakes: list[FakeProvider], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without opentelemetry installed the listener records nothing and breaks nothing."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setattr(_otel, "_told_missing", False)
    caplog.set_level(logging.DEBUG, logger="failover")
    otel = OpenTelemetryListener()
    assert OpenTelemetryListener().enabled is otel.enabled is False
    told = [r for r in caplog.records if "opentelemetry is not installed" in r.getMessage()]
    assert len(told) == 1  # once, not once per listener
    with Router.from_dict(policy_for(fakes), listeners=[otel]) as router:
        assert router.complete(MSG).endpoint == "primary"
    assert otel._calls == {}


# --- Prometheus --------------------------------------------------------------------------------
def test_prometheus_counts_attempts_failures_failovers(fakes: list[FakeProvider]) -> None:
    """Attempts, failures by kind, failovers and latency histograms, read from a registry."""
    registry = CollectorRegistry()
    fakes[0].set_mode(Status(529))
    listener = PrometheusListener(registry)
    with Router.from_dict(policy_for(fakes), listeners=[listener]) as router:
        router.complete(MSG)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("failover_attempts_total", route="chat", endpoint="primary", outcome="error") == 2
    assert value("failover_attempts_total", route="chat", endpoint="secondary", outcome="ok") == 1
    assert value("failover_failures_total", endpoint="primary", kind="overloaded") == 2
    assert (
        value("failover_failovers_total", route="chat", **{"from": "primary", "to": "secondary"})
        == 1
    )
    assert (
        value("failover_attempt_duration_seconds_count", endpoint="primary", outcome="error") == 2
    )
    assert value("failover_attempt_duration_seconds_count", endpoint="secondary", outcome="ok") == 1
    assert value("failover_call_duration_seconds_count", route="chat", outcome="ok") == 1
    assert value("failover_breaker_state", endpoint="primary") == 0
    assert value("failover_breaker_state", endpoint="backup") is None  # never called


def test_prometheus_breaker_state_deadline_and_cache(fakes: list[FakeProvider]) -> None:
    """The breaker gauge follows transitions; deadlines and cache fallbacks are counted."""
    registry = CollectorRegistry()
    listener = PrometheusListener(registry, namespace="llm")
    policy = policy_for(
        fakes[:1],
        cache=True,
        deadline="300ms",
        retry={"attempts": 1},
        breaker={"failure_threshold": 1},
    )
    with Router.from_dict(policy, listeners=[listener]) as router:
        router.complete(MSG)
        fakes[0].set_mode(Status(503))
        assert router.complete(MSG).from_cache
        assert registry.get_sample_value("llm_breaker_state", {"endpoint": "primary"}) == 2
        assert registry.get_sample_value("llm_cache_fallbacks_total", {"route": "chat"}) == 1
        router.breaker("primary").reset()
        assert registry.get_sample_value("llm_breaker_state", {"endpoint": "primary"}) == 0
        fakes[0].set_mode(Blackhole())
        with pytest.raises(AllEndpointsFailed):
            router.complete([{"role": "user", "content": "not cached"}])
    assert registry.get_sample_value("llm_deadline_exceeded_total", {"route": "chat"}) == 1
    assert (
        registry.get_sample_value(
            "llm_call_duration_seconds_count", {"route": "chat", "outcome": "cache"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "llm_call_duration_seconds_count", {"route": "chat", "outcome": "error"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("llm_failures_total", {"endpoint": "primary", "kind": "deadline"})
        == 1
    )


def test_prometheus_listeners_share_a_registry() -> None:
    """Two listeners on one registry share its metrics instead of failing to register."""
    registry = CollectorRegistry()
    first, second = PrometheusListener(registry), PrometheusListener(registry)
    first(attempt("a"))
    second(attempt("a"))
    labels = {"route": "chat", "endpoint": "a", "outcome": "ok"}
    assert registry.get_sample_value("failover_attempts_total", labels) == 2


def test_prometheus_buckets_suit_llm_latencies() -> None:
    """Latencies land in buckets from tens of milliseconds to minutes."""
    registry = CollectorRegistry()
    listener = PrometheusListener(registry)
    for latency in (0.02, 0.7, 12.0, 95.0):
        listener(attempt("a", latency=latency))
    labels = {"endpoint": "a", "outcome": "ok"}
    bucket = "failover_attempt_duration_seconds_bucket"
    assert registry.get_sample_value(bucket, {**labels, "le": "0.05"}) == 1
    assert registry.get_sample_value(bucket, {**labels, "le": "1.0"}) == 2
    assert registry.get_sample_value(bucket, {**labels, "le": "15.0"}) == 3
    assert registry.get_sample_value(bucket, {**labels, "le": "120.0"}) == 4


def test_prometheus_is_a_noop_without_prometheus_client(
    fakes: list[FakeProvider], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without prometheus_client installed the listener records nothing and breaks nothing."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.setattr(_prometheus, "_told_missing", False)
    caplog.set_level(logging.DEBUG, logger="failover")
    listener = PrometheusListener()
    assert PrometheusListener().enabled is listener.enabled is False
    told = [r for r in caplog.records if "prometheus_client is not installed" in r.getMessage()]
    assert len(told) == 1
    with Router.from_dict(policy_for(fakes), listeners=[listener]) as router:
        assert router.complete(MSG).endpoint == "primary"


# --- stats -------------------------------------------------------------------------------------
def test_stats_percentiles_are_exact_on_known_latencies() -> None:
    """Of latencies 1..100 s (any order), p50 is 50, p95 is 95, p99 is 99 (nearest rank)."""
    stats = StatsListener(clock=Ticker())
    latencies = [float(n) for n in range(1, 101)]
    random.Random(7).shuffle(latencies)
    for latency in latencies:
        stats(attempt("a", latency=latency))
    snap = stats.snapshot()["a"]
    assert (snap.p50, snap.p95, snap.p99) == (50.0, 95.0, 99.0)
    assert (snap.calls, snap.ok, dict(snap.errors), snap.skipped) == (100, 100, {}, 0)


def test_stats_count_errors_by_kind_and_skips() -> None:
    """Failures are counted by kind; skips apart, as no request was made."""
    stats = StatsListener(clock=Ticker())
    stats(attempt("a", latency=0.5))
    for kind in ("timeout", "timeout", "rate_limited"):
        stats(attempt("a", "error", latency=2.0, error=kind))
    stats(attempt("a", "skipped", latency=0.0, error="breaker_open"))
    snap = stats.snapshot()["a"]
    assert snap == EndpointStats(
        calls=4,
        ok=1,
        errors={"rate_limited": 1, "timeout": 2},
        p50=0.5,
        p95=0.5,
        p99=0.5,
        skipped=1,
    )
    assert snap.error_rate == 0.75
    with pytest.raises(TypeError):
        snap.errors["timeout"] = 0  # type: ignore[index]


def test_stats_window_slides() -> None:
    """Figures older than the window drop out; the endpoint stays, with empty figures."""
    clock = Ticker()
    stats = StatsListener(window=60.0, clock=clock)
    stats(attempt("a", latency=1.0))
    clock.now += 30
    stats(attempt("a", latency=3.0))
    stats(attempt("a", "error", error="server"))
    assert stats.snapshot()["a"].calls == 3
    clock.now += 31
    assert stats.snapshot()["a"] == EndpointStats(
        calls=2, ok=1, errors={"server": 1}, p50=3.0, p95=3.0, p99=3.0
    )
    clock.now += 60
    assert stats.snapshot() == {
        "a": EndpointStats(calls=0, ok=0, errors={}, p50=None, p95=None, p99=None)
    }
    assert stats.snapshot()["a"].error_rate is None


def test_stats_memory_is_bounded() -> None:
    """However many calls, an endpoint keeps max_samples latencies and 60 count slices."""
    clock = Ticker()
    stats = StatsListener(window=60.0, max_samples=10, clock=clock)
    for n in range(1, 10_001):
        clock.now += 0.05
        stats(attempt("a", latency=float(n)))
    ep = stats._endpoints["a"]
    assert len(ep.at) == len(ep.latency) == 10  # a ring, written in turn
    assert len(ep.slices) <= 60
    snap = stats.snapshot()["a"]
    assert snap.calls == snap.ok == pytest.approx(1200, abs=21)  # 60 s at 20/s
    assert (snap.p50, snap.p99) == (9995.0, 10000.0)  # the newest ten


def test_stats_thread_safe() -> None:
    """Concurrent events from many threads are all counted."""
    stats = StatsListener()

    def hammer() -> None:
        for _ in range(2000):
            stats(attempt("a", latency=0.1))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.snapshot()["a"].calls == 16_000


def test_stats_rejects_bad_settings() -> None:
    """A window that is not positive or max_samples below 1 is refused."""
    with pytest.raises(ValueError, match="window"):
        StatsListener(window=0)
    with pytest.raises(ValueError, match="max_samples"):
        StatsListener(max_samples=0)


def test_stats_with_a_real_router(fakes: list[FakeProvider]) -> None:
    """Against a router: the failing endpoint's errors, the answering one's latency."""
    fakes[0].set_mode(Status(429))
    stats = StatsListener()
    with Router.from_dict(policy_for(fakes), listeners=[stats]) as router:
        router.complete(MSG)
        router.complete(MSG)
    snap = stats.snapshot()
    assert dict(snap["primary"].errors) == {"rate_limited": 3}  # then the breaker opened
    assert snap["primary"].skipped == 1
    assert snap["primary"].p50 is None
    assert (snap["secondary"].calls, snap["secondary"].ok) == (2, 2)
    assert snap["secondary"].p50 is not None
    assert 0 < snap["secondary"].p50 < 2
    assert "backup" not in snap


# --- the JSONL trace ---------------------------------------------------------------------------
def test_jsonl_trace_lines(fakes: list[FakeProvider], tmp_path: Path) -> None:
    """One line per attempt with exactly t, endpoint, outcome, error, status, latency."""
    fakes[0].set_mode(Status(529))
    path = tmp_path / "trace.jsonl"
    policy = policy_for(fakes, retry={"attempts": 2}, breaker={"failure_threshold": 2})
    with (
        JsonlTraceListener(path) as trace,
        Router.from_dict(policy, listeners=[trace]) as router,
    ):
        router.complete(MSG)
        router.complete(MSG)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["endpoint"], r["outcome"], r["error"], r["status"]) for r in lines] == [
        ("primary", "error", "overloaded", 529),
        ("primary", "error", "overloaded", 529),
        ("secondary", "ok", None, None),
        ("primary", "skipped", "breaker_open", None),
        ("secondary", "ok", None, None),
    ]
    assert all(list(r) == ["t", "endpoint", "outcome", "error", "status", "latency"] for r in lines)
    times = [r["t"] for r in lines]
    assert times == sorted(times)
    assert 0 <= times[0] < 5
    assert lines[3]["latency"] == 0
    assert all(isinstance(r["latency"], float | int) and r["latency"] >= 0 for r in lines)


def test_jsonl_trace_to_an_open_file_and_per_process_path(tmp_path: Path) -> None:
    """A given file is written and left open; ``{pid}`` in a path becomes the process id."""
    clock = Ticker()
    with (tmp_path / "given.jsonl").open("w") as given:
        trace = JsonlTraceListener(given, clock=clock)
        clock.now += 1.25
        trace(attempt("a", "error", latency=0.5, error="server", status_code=503))
        trace(CallStarted("chat", 1, 10))  # not an attempt: nothing written
        trace.close()
        assert not given.closed
    assert json.loads((tmp_path / "given.jsonl").read_text()) == {
        "t": 1.25,
        "endpoint": "a",
        "outcome": "error",
        "error": "server",
        "status": 503,
        "latency": 0.5,
    }
    with JsonlTraceListener(str(tmp_path / "trace-{pid}.jsonl")) as trace:
        assert trace.path == str(tmp_path / f"trace-{os.getpid()}.jsonl")
    trace(attempt("a"))  # after close: dropped, not an error


# --- keys and prompts ---------------------------------------------------------------------------
def test_no_key_or_prompt_in_spans_metrics_or_trace(
    fakes: list[FakeProvider],
    spans: tuple[TracerProvider, InMemorySpanExporter],
    tmp_path: Path,
) -> None:
    """No span attribute, event, status, metric label or trace line holds the key or prompt."""
    provider, exporter = spans
    registry = CollectorRegistry()
    fakes[0].set_mode(Status(401))
    fakes[1].set_mode(Status(529))
    path = tmp_path / "trace.jsonl"
    stats = StatsListener()
    listeners: list[Listener] = [
        OpenTelemetryListener(provider),
        PrometheusListener(registry),
        stats,
        JsonlTraceListener(path),
    ]
    with Router.from_dict(policy_for(fakes), listeners=listeners) as router:
        router.complete(MSG)
    dump = [generate_latest(registry).decode(), path.read_text(), repr(stats.snapshot())]
    for span in exporter.get_finished_spans():
        dump.append(span.to_json())
    text = "\n".join(dump)
    assert "failover_failures_total" in text
    assert "gen_ai.request.model" in text
    assert KEY not in text
    assert PROMPT not in text


# --- listeners_from_config ---------------------------------------------------------------------
@pytest.fixture
def failover_logger_level() -> Iterator[None]:
    """Restore the failover logger's level after the test."""
    logger = logging.getLogger("failover")
    level = logger.level
    yield
    logger.setLevel(level)


def test_config_defaults_to_logging_only() -> None:
    """An empty section gives the router's default: one logging listener."""
    listeners = listeners_from_config({})
    assert [type(x) for x in listeners] == [LoggingListener]


def test_config_builds_every_listener(tmp_path: Path, failover_logger_level: None) -> None:
    """Each key builds its listener, in a fixed order, with its settings."""
    path = tmp_path / "t.jsonl"
    listeners = listeners_from_config(
        {
            "logging": {"level": "debug", "prompts": False},
            "otel": True,
            "prometheus": {"namespace": "cfgtest"},
            "stats": {"window": "2m", "max_samples": 64},
            "trace": str(path),
        }
    )
    assert [type(x) for x in listeners] == [
        LoggingListener,
        StatsListener,
        PrometheusListener,
        OpenTelemetryListener,
        JsonlTraceListener,
    ]
    assert logging.getLogger("failover").level == logging.DEBUG
    stats = listeners[1]
    assert isinstance(stats, StatsListener)
    assert (stats.window, stats.max_samples) == (120.0, 64)
    listeners[2](attempt("a"))
    from prometheus_client import REGISTRY

    labels = {"route": "chat", "endpoint": "a", "outcome": "ok"}
    assert REGISTRY.get_sample_value("cfgtest_attempts_total", labels) == 1
    trace = listeners[4]
    assert isinstance(trace, JsonlTraceListener)
    trace.close()
    assert path.exists()


def test_config_switches_off() -> None:
    """false (or null) leaves a listener out, logging included."""
    listeners = listeners_from_config(
        {"logging": False, "otel": False, "prometheus": False, "stats": None, "trace": None}
    )
    assert listeners == []
    assert [type(x) for x in listeners_from_config({"stats": True, "prometheus": True})] == [
        LoggingListener,
        StatsListener,
        PrometheusListener,
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"promethus": True},
            r"observability.promethus: unknown key 'promethus' \(did you mean 'prometheus'\?\)",
        ),
        ({"otel": "yes"}, "observability.otel: expected true or false"),
        ({"prometheus": {"namespace": 3}}, "observability.prometheus.namespace: expected a string"),
        ({"prometheus": {"prefix": "x"}}, "observability.prometheus.prefix: unknown key 'prefix'"),
        ({"logging": {"level": "loud"}}, "observability.logging.level: expected one of"),
        ({"logging": {"prompts": True}}, "observability.logging.prompts: only false"),
        ({"stats": {"window": "soon"}}, "observability.stats.window: 'soon' is not a duration"),
        ({"stats": {"max_samples": 0}}, "observability.stats.max_samples: expected a positive"),
        ({"trace": 5}, "observability.trace: expected a file path"),
    ],
)
def test_config_errors_name_the_key(config: dict[str, Any], message: str) -> None:
    """A bad section is refused with the key path in the message."""
    with pytest.raises(ValueError, match=message):
        listeners_from_config(config)


def test_listeners_declare_the_events_they_want(fakes: list[FakeProvider]) -> None:
    """A listener with ``wants`` hears only those events; one without hears them all."""
    from failover._events import (
        AttemptFinished,
        AttemptStarted,
        CallFinished,
        CallStarted,
        FailedOver,
    )

    class Picky:
        wants = frozenset({FailedOver})

        def __init__(self) -> None:
            self.seen: list[object] = []

        def __call__(self, event: object) -> None:
            self.seen.append(event)

    picky = Picky()
    everything: list[object] = []
    fakes[0].set_mode(Status(401))
    policy = make_policy({f.name: f.url for f in fakes})
    with Router.from_dict(policy, listeners=[picky, everything.append]) as router:
        router.complete(MSG)
    assert [type(e) for e in picky.seen] == [FailedOver]
    kinds = {type(e) for e in everything}
    assert {CallStarted, AttemptStarted, AttemptFinished, FailedOver, CallFinished} <= kinds
    failover = picky.seen[0]
    assert isinstance(failover, FailedOver)
    assert failover.request_chars == sum(len(m["content"]) for m in MSG)


def test_default_listeners_build_no_call_events(fakes: list[FakeProvider]) -> None:
    """The built-in logging and stats listeners want no CallStarted/AttemptStarted/CallFinished,
    so a Router with default listeners never builds them (the happy path's saving)."""
    from failover._events import Audience
    from failover.instrumentation import StatsListener
    from failover.instrumentation._logging import LoggingListener

    hear = Audience([LoggingListener(), StatsListener()])
    assert hear.call_started == hear.attempt_started == hear.call_finished == ()
    assert len(hear.attempt_finished) == 2
    assert len(hear.failed_over) == 1


def test_router_takes_its_listeners_from_the_policy(
    fakes: list[FakeProvider], failover_logger_level: None
) -> None:
    """Without listeners in code, the policy's observability section decides; listeners
    given in code replace it."""
    policy = make_policy({f.name: f.url for f in fakes[:1]})
    policy["observability"] = {"logging": {"level": "warning"}, "stats": {"max_samples": 16}}
    with Router.from_dict(policy) as router:
        # the stats listener is told of attempts directly, not through the event audience
        assert [type(x) for x in router._hear.all] == [LoggingListener]
        assert router._stats.max_samples == 16  # the section's stats serve status()
        assert logging.getLogger("failover").level == logging.WARNING
        router.complete(MSG)
        assert router.status()[0].latency_p50 is not None
    with Router.from_dict(policy, listeners=[]) as router:
        assert router._hear.all == ()
        assert isinstance(router._stats, StatsListener)  # status()'s own


def test_prometheus_counts_skipped_malformed_events(fakes: list[FakeProvider]) -> None:
    """A malformed event skipped in a healthy stream is counted for its endpoint."""
    from failover.testing import MalformedEvent

    registry = CollectorRegistry()
    listener = PrometheusListener(registry, namespace="mal")
    labels = {"endpoint": "primary", "provider": "anthropic"}
    before = registry.get_sample_value("mal_stream_events_skipped_total", labels) or 0.0
    fakes[0].set_mode(MalformedEvent(after_events=4))
    with (
        Router.from_dict(policy_for(fakes[:1]), listeners=[listener]) as router,
        router.stream(MSG) as s,
    ):
        assert "".join(s) == "Hello from primary"
    after = registry.get_sample_value("mal_stream_events_skipped_total", labels)
    assert after == before + 1


def test_prometheus_shows_degraded_shared_state() -> None:
    """failover_shared_state_up is 0 for a Redis the process could not reach (degraded)."""
    import socket

    from failover.breaker._redis_connect import connection

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        url = f"redis://:s3cret@127.0.0.1:{hole.getsockname()[1]}/0"
        conn = connection(url, 0.05)
        conn.failed(TimeoutError("no answer"))
        registry = CollectorRegistry()
        PrometheusListener(registry, namespace="sh")
        masked = f"redis://:***@127.0.0.1:{hole.getsockname()[1]}/0"
        assert registry.get_sample_value("sh_shared_state_up", {"redis": masked}) == 0.0
        conn.recovered()
        assert registry.get_sample_value("sh_shared_state_up", {"redis": masked}) == 1.0
        assert b"s3cret" not in generate_latest(registry)
