"""OpenTelemetry: a span per call, a child span per attempt, after the GenAI conventions.

The call span (``failover.call {route}``, kind INTERNAL) wraps the whole call: retries,
failovers, breaker changes, the deadline and answers from the cache are events on it.
Each request that went out is a child span (``chat {model}``, kind CLIENT) carrying the
GenAI attributes (provider, request model, token usage, ``error.type``) plus failover's
own (route, endpoint, retry number, outcome). Token usage lives on the attempt span that
spent it only, so a backend summing ``gen_ai.usage.*`` over spans counts each token once.
An attempt the breaker turned away made no request, so it is an event on the call span,
not a CLIENT span a backend would count as an inference.

opentelemetry is imported by the constructor, never by ``import failover.instrumentation``;
without it the listener does nothing.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._events import (
    AttemptFinished,
    AttemptStarted,
    BreakerStateChanged,
    CallFinished,
    CallStarted,
    DeadlineReached,
    Event,
    FailedOver,
    RetryScheduled,
    ServedFromCache,
)
from .._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["MAX_OPEN_CALLS", "OpenTelemetryListener", "provider_name"]

MAX_OPEN_CALLS = 10_000
"""Calls tracked at once by default; beyond it the oldest is ended as abandoned."""

_log = logging.getLogger("failover")
_told_missing = False

# The call whose events this thread or task is emitting. A breaker change belongs to an
# endpoint, not a call, so it carries no call_id; it is emitted from inside the call
# that caused it, and this says which one. A stale value is harmless: it names a call
# that is no longer open.
_current_call: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "failover_otel_call", default=None
)

# LiteLLM model prefixes -> the GenAI conventions' gen_ai.provider.name values.
_LITELLM_PROVIDERS = {
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
    "openai": "openai",
    "perplexity": "perplexity",
    "vertex_ai": "gcp.vertex_ai",
    "watsonx": "ibm.watsonx.ai",
    "xai": "x_ai",
}


def provider_name(provider: str, model: str) -> str:
    """The GenAI ``gen_ai.provider.name`` for an endpoint.

    Args:
        provider: the endpoint's failover provider (``anthropic``, ``litellm``).
        model: the endpoint's model; for LiteLLM its prefix names the real provider.

    Returns:
        A well-known value such as ``anthropic``, ``openai`` or ``aws.bedrock``; for an
        unknown LiteLLM prefix, the prefix itself; ``litellm`` when there is none.
    """
    if provider != "litellm":
        return provider or "unknown"
    prefix, sep, _ = model.partition("/")
    if not sep:
        return "litellm"
    return _LITELLM_PROVIDERS.get(prefix, prefix)


class _OpenCall:
    __slots__ = ("attempts", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.attempts: dict[tuple[str, int], Span] = {}


class OpenTelemetryListener:
    """Record each call and each attempt as OpenTelemetry spans.

    Spans start on ``CallStarted``/``AttemptStarted`` and end on
    ``AttemptFinished``/``CallFinished``. The call span's parent is whatever span is
    current when the call starts, so calls nest under your request spans. Open spans are
    forgotten when they end; a call that never ends (a stream abandoned half-way) is held
    until ``max_open_calls`` newer calls push it out, then ended with
    ``failover.abandoned = true``.

    Without the ``otel`` extra (opentelemetry-api) installed, the listener is a no-op and
    says so once at DEBUG.

    Args:
        tracer_provider: where spans go; the global provider when None.
        max_open_calls: the most calls tracked at once.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        max_open_calls: int = MAX_OPEN_CALLS,
    ) -> None:
        self._lock = threading.Lock()
        self._calls: OrderedDict[int, _OpenCall] = OrderedDict()
        self._max_open = max(1, max_open_calls)
        self._tracer: Tracer | None = None
        self._handlers: dict[type[Any], Callable[[Any], None]] = {}
        try:
            from opentelemetry import trace
        except ImportError:
            _say_missing()
            return
        self._trace = trace
        self._tracer = trace.get_tracer("failover", __version__, tracer_provider=tracer_provider)
        self._handlers = {
            CallStarted: self._call_started,
            AttemptStarted: self._attempt_started,
            AttemptFinished: self._attempt_finished,
            RetryScheduled: self._retry,
            FailedOver: self._failed_over,
            BreakerStateChanged: self._breaker,
            DeadlineReached: self._deadline,
            ServedFromCache: self._cache,
            CallFinished: self._call_finished,
        }

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded (False when opentelemetry is not installed)."""
        return self._tracer is not None

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # --- the call span ----------------------------------------------------------------
    def _call_started(self, event: CallStarted) -> None:
        assert self._tracer is not None
        span = self._tracer.start_span(
            f"failover.call {event.route}",
            kind=self._trace.SpanKind.INTERNAL,
            attributes={
                "failover.route": event.route,
                "failover.stream": event.stream,
                "failover.request_chars": event.request_chars,
            },
        )
        evicted = []
        with self._lock:
            self._calls[event.call_id] = _OpenCall(span)
            while len(self._calls) > self._max_open:
                evicted.append(self._calls.popitem(last=False)[1])
        _current_call.set(event.call_id)
        for call in evicted:
            _abandon(call)

    def _call_finished(self, event: CallFinished) -> None:
        with self._lock:
            call = self._calls.pop(event.call_id, None)
        if _current_call.get() == event.call_id:
            _current_call.set(None)
        if call is None:
            return
        for attempt in call.attempts.values():  # none, unless an attempt never reported
            attempt.set_attribute("failover.abandoned", True)
            attempt.end()
        span = call.span
        span.set_attribute("failover.outcome", event.outcome)
        span.set_attribute("failover.attempts", event.attempts)
        span.set_attribute("failover.from_cache", event.from_cache)
        if event.endpoint is not None:
            span.set_attribute("failover.endpoint", event.endpoint)
        if event.outcome != "ok":
            error = event.error or "error"
            span.set_attribute("error.type", error)
            span.set_status(self._trace.StatusCode.ERROR, error)
        span.end()

    def _event(self, call_id: int | None, name: str, attributes: dict[str, Any]) -> None:
        if call_id is None:
            return
        with self._lock:
            call = self._calls.get(call_id)
        if call is not None:
            call.span.add_event(name, attributes)

    def _retry(self, event: RetryScheduled) -> None:
        attributes = {
            "failover.endpoint": event.endpoint,
            "failover.attempt.retry": event.retry,
            "failover.retry.delay": event.delay,
            "failover.retry.reason": event.reason,
        }
        self._event(event.call_id, "failover.retry", attributes)

    def _failed_over(self, event: FailedOver) -> None:
        attributes: dict[str, Any] = {
            "failover.endpoint": event.endpoint,
            "failover.reason": event.reason,
        }
        if event.next_endpoint is not None:
            attributes["failover.next_endpoint"] = event.next_endpoint
        self._event(event.call_id, "failover.failover", attributes)

    def _breaker(self, event: BreakerStateChanged) -> None:
        attributes = {
            "failover.endpoint": event.endpoint,
            "failover.breaker.old": event.old,
            "failover.breaker.new": event.new,
            "failover.breaker.reason": event.reason,
        }
        self._event(_current_call.get(), "failover.breaker", attributes)

    def _deadline(self, event: DeadlineReached) -> None:
        attributes = {"failover.deadline": event.deadline, "failover.elapsed": event.elapsed}
        self._event(event.call_id, "failover.deadline", attributes)

    def _cache(self, event: ServedFromCache) -> None:
        attributes = {"failover.endpoint": event.endpoint, "failover.cache.age": event.age}
        self._event(event.call_id, "failover.cache", attributes)

    # --- attempt spans ----------------------------------------------------------------
    def _attempt_started(self, event: AttemptStarted) -> None:
        assert self._tracer is not None
        with self._lock:
            call = self._calls.get(event.call_id)
        if call is None:
            return  # the call started before this listener heard of it, or was evicted
        system = provider_name(event.provider, event.model)
        span = self._tracer.start_span(
            f"chat {event.model}",
            context=self._trace.set_span_in_context(call.span),
            kind=self._trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": system,
                "gen_ai.system": system,  # the name before semconv 1.37; many backends read it
                "gen_ai.request.model": event.model,
                "failover.route": event.route,
                "failover.endpoint": event.endpoint,
                "failover.attempt.retry": event.retry,
                "failover.attempt.trial": event.trial,
                "failover.timeout": event.timeout,
            },
        )
        with self._lock:
            call.attempts[event.endpoint, event.retry] = span

    def _attempt_finished(self, event: AttemptFinished) -> None:
        if event.outcome == "skipped":
            attributes = {
                "failover.endpoint": event.endpoint,
                "failover.attempt.retry": event.retry,
                "error.type": event.error or "breaker_open",
            }
            self._event(event.call_id, "failover.attempt.skipped", attributes)
            return
        with self._lock:
            call = self._calls.get(event.call_id)
            span = None if call is None else call.attempts.pop((event.endpoint, event.retry), None)
        if span is None:
            return
        span.set_attribute("failover.attempt.outcome", event.outcome)
        if event.status_code is not None:
            span.set_attribute("http.response.status_code", event.status_code)
        if event.request_id is not None:
            span.set_attribute("failover.request_id", event.request_id)
        if event.input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", event.input_tokens)
        if event.output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", event.output_tokens)
        if event.outcome != "ok":
            error = event.error or "unknown"
            span.set_attribute("error.type", error)
            span.set_status(self._trace.StatusCode.ERROR, event.detail or error)
        span.end()

    def __repr__(self) -> str:
        return f"OpenTelemetryListener(enabled={self.enabled}, open_calls={len(self._calls)})"


def _abandon(call: _OpenCall) -> None:
    """End a call that never finished, so it shows up rather than vanishing."""
    for span in (*call.attempts.values(), call.span):
        span.set_attribute("failover.abandoned", True)
        span.end()


def _say_missing() -> None:
    global _told_missing  # noqa: PLW0603 -- said once per process, not once per listener
    if not _told_missing:
        _told_missing = True
        _log.debug(
            "failover: opentelemetry is not installed (pip install 'failover[otel]');"
            " OpenTelemetryListener records nothing"
        )
