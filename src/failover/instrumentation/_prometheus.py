"""Prometheus: counters, a breaker-state gauge and latency histograms.

prometheus_client is imported by the constructor, never by
``import failover.instrumentation``; without it the listener does nothing. Labels are
route and endpoint names, outcomes and failure kinds from the policy and the failure
table: never a key, a prompt or anything a caller controls, so cardinality stays bounded.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._events import (
    AttemptFinished,
    AttemptStarted,
    BreakerStateChanged,
    CallFinished,
    DeadlineReached,
    Event,
    FailedOver,
    ServedFromCache,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["BREAKER_STATES", "LATENCY_BUCKETS", "PrometheusListener"]

LATENCY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0,
    15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0,
)  # fmt: skip
"""Histogram buckets (seconds): fast failures at the bottom, long generations at the top."""

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
"""The value ``failover_breaker_state`` takes for each breaker state."""

_log = logging.getLogger("failover")
_told_missing = False


class _Metrics:
    """One namespace's metrics in one registry (made once, shared by its listeners)."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        self.attempts = counter(
            "attempts", "Attempts by outcome: ok, error, skipped.", ("route", "endpoint", "outcome")
        )
        self.failures = counter("failures", "Failed attempts by kind.", ("endpoint", "kind"))
        self.failovers = counter(
            "failovers", "Moves from one endpoint to the next.", ("route", "from", "to")
        )
        self.cache_fallbacks = counter(
            "cache_fallbacks", "Cached answers served after every endpoint failed.", ("route",)
        )
        self.cache_hits = counter(
            "cache_hits", "Fresh cached answers served without a call.", ("route",)
        )
        self.deadlines = counter(
            "deadline_exceeded", "Calls whose route deadline ran out.", ("route",)
        )
        self.breaker_state = Gauge(
            "breaker_state",
            "Breaker state: 0 closed, 1 half_open, 2 open.",
            ("endpoint",),
            namespace=namespace,
            registry=registry,
        )
        self.call_duration = Histogram(
            "call_duration_seconds",
            "Whole calls (retries, failover, backoff) by outcome (ok, error, cache).",
            ("route", "outcome"),
            namespace=namespace,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.attempt_duration = Histogram(
            "attempt_duration_seconds",
            "Single requests to an endpoint by outcome (ok, error).",
            ("endpoint", "outcome"),
            namespace=namespace,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        registry.register(_ProcessCollector(namespace))


class _ProcessCollector:
    """What lower layers count for the whole process, read when Prometheus scrapes:
    malformed stream events skipped, and whether each shared-state Redis is in use or
    the process runs on local breakers (``degraded``)."""

    def __init__(self, namespace: str) -> None:
        self._ns = namespace

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        skipped = CounterMetricFamily(
            f"{self._ns}_stream_events_skipped",
            "Malformed stream events skipped (the stream went on).",
            labels=("endpoint", "provider"),
        )
        malformed = sys.modules.get("failover.providers._malformed")
        for (endpoint, provider), count in dict(getattr(malformed, "SKIPPED", {})).items():
            skipped.add_metric((endpoint, provider), count)
        yield skipped
        shared = GaugeMetricFamily(
            f"{self._ns}_shared_state_up",
            "1 while breaker state is shared through this Redis, 0 while degraded to local.",
            labels=("redis",),
        )
        connect = sys.modules.get("failover.breaker._redis_connect")
        for conn in list(getattr(connect, "_connections", {}).values()):
            shared.add_metric((conn.url,), 1.0 if conn.healthy else 0.0)
        yield shared


# Metrics may be registered once per registry; listeners sharing one share its metrics.
_made: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Metrics]] = (
    weakref.WeakKeyDictionary()
)
_made_lock = threading.Lock()


def _metrics(registry: CollectorRegistry, namespace: str) -> _Metrics:
    with _made_lock:
        by_namespace = _made.setdefault(registry, {})
        metrics = by_namespace.get(namespace)
        if metrics is None:
            metrics = by_namespace[namespace] = _Metrics(registry, namespace)
        return metrics


class PrometheusListener:
    """Count attempts, failures, failovers and breaker states as Prometheus metrics.

    Metrics (with the default namespace ``failover``): ``failover_attempts_total``,
    ``failover_failures_total``, ``failover_failovers_total``,
    ``failover_cache_fallbacks_total``, ``failover_cache_hits_total``,
    ``failover_deadline_exceeded_total``, ``failover_breaker_state``,
    ``failover_call_duration_seconds``, ``failover_attempt_duration_seconds``, and for the
    whole process ``failover_stream_events_skipped_total`` (malformed stream events skipped)
    and ``failover_shared_state_up`` (1 per shared-state Redis in use, 0 while degraded
    to local breakers). Several
    listeners on one registry and namespace share the same metrics, so building one per
    Router is fine.

    Without the ``prometheus`` extra (prometheus-client) installed, the listener is a
    no-op and says so once at DEBUG.

    Args:
        registry: where the metrics are registered; prometheus_client's default
            ``REGISTRY`` when None.
        namespace: the metric name prefix.
    """

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "failover"):
        self._m: _Metrics | None = None
        self._handlers: dict[type[Any], Callable[[Any], None]] = {}
        self._seen: set[str] = set()
        try:
            import prometheus_client
        except ImportError:
            _say_missing()
            return
        self._m = _metrics(prometheus_client.REGISTRY if registry is None else registry, namespace)
        self._handlers = {
            AttemptStarted: self._attempt_started,
            AttemptFinished: self._attempt_finished,
            FailedOver: self._failed_over,
            BreakerStateChanged: self._breaker,
            DeadlineReached: self._deadline,
            ServedFromCache: self._cache,
            CallFinished: self._call_finished,
        }

    @property
    def enabled(self) -> bool:
        """Whether metrics are recorded (False when prometheus_client is not installed)."""
        return self._m is not None

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _attempt_started(self, event: AttemptStarted) -> None:
        # Give each endpoint's breaker gauge a series (0, closed) from its first call,
        # so "never opened" shows as 0 rather than as no data.
        if event.endpoint not in self._seen:
            assert self._m is not None
            self._seen.add(event.endpoint)
            self._m.breaker_state.labels(event.endpoint)

    def _attempt_finished(self, event: AttemptFinished) -> None:
        m = self._m
        assert m is not None
        m.attempts.labels(event.route, event.endpoint, event.outcome).inc()
        if event.outcome == "skipped":
            return  # no request was made: no latency, and not the endpoint's failure
        m.attempt_duration.labels(event.endpoint, event.outcome).observe(event.latency)
        if event.outcome != "ok":
            m.failures.labels(event.endpoint, event.error or "unknown").inc()

    def _failed_over(self, event: FailedOver) -> None:
        assert self._m is not None
        self._m.failovers.labels(event.route, event.endpoint, event.next_endpoint or "none").inc()

    def _breaker(self, event: BreakerStateChanged) -> None:
        assert self._m is not None
        self._seen.add(event.endpoint)
        self._m.breaker_state.labels(event.endpoint).set(BREAKER_STATES.get(event.new, 2))

    def _deadline(self, event: DeadlineReached) -> None:
        assert self._m is not None
        self._m.deadlines.labels(event.route).inc()

    def _cache(self, event: ServedFromCache) -> None:
        assert self._m is not None
        # A fresh hit (``serve: fresh``) is served before any attempt; a fallback after.
        counter = self._m.cache_fallbacks if event.attempts else self._m.cache_hits
        counter.labels(event.route).inc()

    def _call_finished(self, event: CallFinished) -> None:
        assert self._m is not None
        outcome = "cache" if event.from_cache else event.outcome
        self._m.call_duration.labels(event.route, outcome).observe(event.latency)

    def __repr__(self) -> str:
        return f"PrometheusListener(enabled={self.enabled})"


def _say_missing() -> None:
    global _told_missing  # noqa: PLW0603 -- said once per process, not once per listener
    if not _told_missing:
        _told_missing = True
        _log.debug(
            "failover: prometheus_client is not installed (pip install 'failover[prometheus]');"
            " PrometheusListener records nothing"
        )
