"""The Router: a policy's routes, each endpoint behind its breaker, called in order."""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._call import AttemptFailed, CallState, Skipped
from ._clock import Clock, SystemClock
from ._errors import AllEndpointsFailed, DeadlineExceeded, RequestError
from ._events import (
    Audience,
    BreakerStateChanged,
    CallFinished,
    CallStarted,
    DeadlineReached,
    FailedOver,
    Listener,
    ServedFromCache,
    emit,
)
from ._response import Response, Usage
from .instrumentation._logging import LoggingListener

if TYPE_CHECKING:
    from ._attempts import Endpoint
    from ._streaming import AsyncStream, Stream
    from .breaker._breaker import Breaker, BreakerStore
    from .breaker._core import Transition
    from .cache._backends import CacheBackend
    from .policy._model import BreakerPolicy, Policy
    from .providers import Provider, ProviderResult

__all__ = ["EndpointStatus", "Router"]

# Call ids are unique across Routers, so one listener can serve several of them.
_CALL_IDS = itertools.count(1)
# A failing cache backend is reported at most this often (seconds), not on every call.
_CACHE_ERROR_LOG_EVERY = 60.0

_log = logging.getLogger("failover")


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """One endpoint's breaker and recent health, as ``Router.status()`` reports it.

    Times are Unix timestamps (seconds); latencies are seconds. The ``recent_`` figures
    and latency percentiles cover the stats window (5 minutes by default; successful
    requests only for latency).
    """

    name: str
    provider: str
    model: str
    state: str
    consecutive_failures: int
    window_calls: int
    window_failures: int
    total_successes: int
    total_failures: int
    opened_at: float | None
    retry_at: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None = None
    recent_calls: int = 0
    recent_errors: Mapping[str, int] = field(default_factory=dict)
    recent_skipped: int = 0


class Router:
    """Routes calls through a policy's endpoints with breakers, retries and a deadline.

    One Router is safe to share between threads and between event loops. Build it with
    :meth:`from_yaml` or :meth:`from_dict`.

    Args:
        policy: the validated policy.
        clock: where time comes from (tests and the simulator pass a virtual one).
        listeners: event listeners; default: those the policy's ``observability:`` section
            names, else one :class:`LoggingListener`.
        rand: a ``random.random``-like function for backoff jitter.
        namespace: the key prefix for shared state (Redis); derived from the policy's
            endpoints and routes when not given.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        clock: Clock | None = None,
        listeners: Iterable[Listener] | None = None,
        rand: Callable[[], float] | None = None,
        namespace: str | None = None,
    ) -> None:
        self.policy = policy
        self._namespace = namespace
        self._clock: Clock = clock if clock is not None else SystemClock()
        if listeners is not None:
            given = tuple(listeners)
        elif policy.observability:
            from .instrumentation._config import listeners_from_config

            given = tuple(listeners_from_config(policy.observability))
        else:
            given = (LoggingListener(),)
        from .instrumentation._stats import StatsListener

        stats = next((x for x in given if isinstance(x, StatsListener)), None)
        if stats is None:
            # status() reports recent latency and errors; keep them even when the
            # caller's listeners do not.
            stats = StatsListener(clock=self._clock.monotonic)
            given = (*given, stats)
        self._stats = stats
        self._hear = Audience(given)
        self._rand = rand if rand is not None else random.random
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[Endpoint, ...]] = {}
        self._breakers: dict[tuple[str, Any], Breaker] = {}
        self._providers: dict[str, Provider] = {}
        self._cache: CacheBackend | None = None
        self._cache_error_logged = -_CACHE_ERROR_LOG_EVERY

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **kwargs: Any) -> Router:
        """Load and validate a YAML policy file, then build a Router on it."""
        from .policy._model import Policy

        return cls(Policy.from_yaml(path), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kwargs: Any) -> Router:
        """Validate a policy given as a dict (same schema as the YAML), then build a Router."""
        from .policy._model import Policy

        return cls(Policy.from_dict(data), **kwargs)

    # --- building -------------------------------------------------------------------
    def _endpoints(self, route: str) -> tuple[Endpoint, ...]:
        endpoints = self._routes.get(route)
        if endpoints is None:
            with self._lock:
                endpoints = self._routes.get(route)
                if endpoints is None:
                    endpoints = self._build_route(route)
                    self._routes[route] = endpoints
        return endpoints

    def _build_route(self, route: str) -> tuple[Endpoint, ...]:
        from ._attempts import Endpoint
        from .breaker._breaker import Breaker
        from .providers import make_provider

        built = []
        for name in self.policy.routes[route].endpoints:
            ep = self.policy.endpoints[name]
            timeout, retry, breaker_policy = self.policy.effective(route, name)
            # Routes that leave the breaker settings alone share the endpoint's breaker.
            key = (name, breaker_policy)
            breaker = self._breakers.get(key)
            if breaker is None:
                label = name if breaker_policy == ep.breaker else f"{name}@{route}"
                breaker = Breaker(
                    label,
                    breaker_policy,
                    self._clock,
                    store=self._state_store(label, breaker_policy),
                    on_transition=self._on_transition,
                )
                self._breakers[key] = breaker
            provider = self._providers.get(name)
            if provider is None:
                provider = self._providers[name] = make_provider(ep)
            built.append(
                Endpoint(
                    name=name,
                    provider_name=ep.provider,
                    model=ep.model,
                    params=ep.params,
                    timeout=timeout,
                    retry=retry,
                    breaker=breaker,
                    provider=provider,
                )
            )
        return tuple(built)

    def _state_store(self, label: str, policy: BreakerPolicy) -> BreakerStore | None:
        """The shared store for one breaker when the policy keeps state in Redis."""
        if self.policy.state.kind != "redis":
            return None  # the breaker makes its own process-local store
        from .breaker._redis import RedisBreakerStore

        url = self.policy.state.url
        assert url is not None
        return RedisBreakerStore(url, self.namespace, label, policy, self._clock)

    def _on_transition(self, name: str, transition: Transition) -> None:
        emit(
            self._hear.breaker_state_changed,
            BreakerStateChanged(name, transition.old, transition.new, transition.reason),
        )

    def _start(
        self,
        route: str | None,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool = False,
    ) -> tuple[str, tuple[Endpoint, ...], CallState]:
        # The clock first: a route's first call builds it (importing the SDKs), and that
        # time counts against the deadline too.
        now = self._clock.monotonic()
        route_policy = self.policy.route(route)
        endpoints = self._endpoints(route_policy.name)
        state = CallState(
            route=route_policy.name,
            clock=self._clock,
            start=now,
            deadline=now + route_policy.deadline,
            hear=self._hear,
            rand=self._rand,
            call_id=next(_CALL_IDS),
            request_chars=_request_chars(messages),
        )
        if self._hear.call_started:
            emit(
                self._hear.call_started,
                CallStarted(state.route, state.call_id, state.request_chars, stream),
            )
        return route_policy.name, endpoints, state

    # --- calling --------------------------------------------------------------------
    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        route: str | None = None,
        **params: Any,
    ) -> Response:
        """Send ``messages`` through ``route`` and return the first good answer.

        Args:
            messages: chat messages (``{"role": ..., "content": ...}``); a ``system``
                message is lifted into ``system=`` for Anthropic.
            route: the route's name; may be omitted when the policy has one route or a
                ``default_route``.
            **params: passed to the provider (``max_tokens``, ``temperature``, ...).

        Raises:
            RouteNotFound: no such route.
            RequestError: the provider rejected the request itself (400, 413, 422).
            AllEndpointsFailed: every endpoint failed.
            DeadlineExceeded: the route's deadline ran out first.
        """
        from ._attempts import call_sync

        name, endpoints, state = self._start(route, messages)
        try:
            key, cached = self._cache_fresh(name, messages, params, state)
            if cached is not None:
                return cached
            last: BaseException | None = None
            for index, ep in enumerate(endpoints):
                try:
                    result = call_sync(ep, state, messages, params)
                except (AttemptFailed, Skipped) as exc:
                    last = exc
                    if self._stop_or_failover(state, endpoints, index, exc):
                        break
                    continue
                response = self._respond(state, ep, result)
                self._cache_store(name, key, response)
                return response
            return self._cache_fallback(state, key, last)
        except BaseException as exc:  # RequestError, cancellation: still a finished call
            self._call_finished(state, None, "error", error=type(exc).__name__)
            raise

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        route: str | None = None,
        **params: Any,
    ) -> Response:
        """The async twin of :meth:`complete`: same arguments, result and errors."""
        from ._attempts import call_async

        name, endpoints, state = self._start(route, messages)
        try:
            key, cached = self._cache_fresh(name, messages, params, state)
            if cached is not None:
                return cached
            last: BaseException | None = None
            for index, ep in enumerate(endpoints):
                try:
                    result = await call_async(ep, state, messages, params)
                except (AttemptFailed, Skipped) as exc:
                    last = exc
                    if self._stop_or_failover(state, endpoints, index, exc):
                        break
                    continue
                response = self._respond(state, ep, result)
                self._cache_store(name, key, response)
                return response
            return self._cache_fallback(state, key, last)
        except BaseException as exc:  # RequestError, cancellation: still a finished call
            self._call_finished(state, None, "error", error=type(exc).__name__)
            raise

    def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        route: str | None = None,
        **params: Any,
    ) -> Stream:
        """Stream the answer: ``with router.stream(...) as s: for text in s: ...``.

        Before the first text delta, failures fail over as in :meth:`complete`. After it,
        a break raises :class:`StreamInterrupted` (or, with ``on_interrupt: continue``,
        resumes on the next endpoint). ``s.response`` holds the final Response once the
        stream is exhausted. Nothing is sent until iteration starts.
        """
        from ._streaming import Stream

        return Stream(self, messages, route, params)

    def astream(
        self,
        messages: Sequence[Mapping[str, Any]],
        route: str | None = None,
        **params: Any,
    ) -> AsyncStream:
        """The async twin of :meth:`stream`: ``async with router.astream(...) as s``."""
        from ._streaming import AsyncStream

        return AsyncStream(self, messages, route, params)

    def _stop_or_failover(
        self, state: CallState, endpoints: Sequence[Endpoint], index: int, exc: BaseException
    ) -> bool:
        """After an endpoint gave up: raise RequestError, stop (True) or fail over."""
        ep = endpoints[index]
        if isinstance(exc, AttemptFailed) and exc.failure.is_request_error:
            failure = exc.failure
            raise RequestError(
                f"{ep.name} rejected the request (HTTP {failure.status_code}): {failure.detail}",
                endpoint=ep.name,
                status_code=failure.status_code,
                attempts=state.attempts,
            ) from exc.__cause__
        out_of_time = state.deadline_hit or state.remaining() <= 0
        following = endpoints[index + 1].name if index + 1 < len(endpoints) else None
        reason: str = "breaker open" if not isinstance(exc, AttemptFailed) else exc.failure.kind
        if out_of_time:
            state.deadline_hit = True
            following = None
            reason = "deadline reached"
        emit(
            self._hear.failed_over,
            FailedOver(
                state.route,
                ep.name,
                following,
                reason,
                state.elapsed(),
                state.call_id,
                state.request_chars,
            ),
        )
        return out_of_time

    def _respond(self, state: CallState, ep: Endpoint, result: ProviderResult) -> Response:
        latency = state.elapsed()
        self._call_finished(
            state,
            ep.name,
            "ok",
            model=result.model,
            provider=ep.provider_name,
            usage=result.usage,
        )
        return Response(
            text=result.text,
            endpoint=ep.name,
            provider=ep.provider_name,
            model=result.model,
            attempts=tuple(state.attempts),
            latency=latency,
            usage=result.usage,
            stop_reason=result.stop_reason,
            raw=result.raw,
        )

    def _all_failed(self, state: CallState) -> AllEndpointsFailed:
        elapsed = state.elapsed()
        if state.deadline_hit:
            deadline = state.deadline - state.start
            emit(
                self._hear.deadline_reached,
                DeadlineReached(
                    state.route,
                    deadline,
                    elapsed,
                    call_id=state.call_id,
                    request_chars=state.request_chars,
                ),
            )
            error: AllEndpointsFailed = DeadlineExceeded(
                state.route,
                state.attempts,
                reason=f"deadline of {deadline:.3g} s reached after {elapsed:.3f} s",
            )
        else:
            error = AllEndpointsFailed(state.route, state.attempts)
        self._call_finished(state, None, "error", error=type(error).__name__)
        return error

    def _call_finished(
        self,
        state: CallState,
        endpoint: str | None,
        outcome: str,
        *,
        from_cache: bool = False,
        model: str | None = None,
        provider: str | None = None,
        usage: Usage | None = None,
        error: str | None = None,
    ) -> None:
        """Announce the end of a call, exactly once, whichever way it ended."""
        if state.finished:
            return
        state.finished = True
        if self._hear.call_finished:
            emit(
                self._hear.call_finished,
                CallFinished(
                    state.route,
                    endpoint,
                    outcome,
                    state.elapsed(),
                    len(state.attempts),
                    from_cache=from_cache,
                    call_id=state.call_id,
                    model=model,
                    provider=provider,
                    input_tokens=usage.input_tokens if usage else None,
                    output_tokens=usage.output_tokens if usage else None,
                    error=error,
                ),
            )

    # --- the fallback cache -----------------------------------------------------------
    def _cache_backend(self) -> CacheBackend:
        if self._cache is None:
            with self._lock:
                if self._cache is None:
                    from .cache._backends import open_cache

                    c = self.policy.cache
                    location = c.path if c.kind == "sqlite" else c.url
                    self._cache = open_cache(c.kind, location, c.max_entries, self.namespace)
        return self._cache

    @property
    def namespace(self) -> str:
        """The prefix that keeps this policy's shared state apart from other policies'.

        Given to the constructor, or derived from the policy's endpoints and routes, so
        every process running the same policy computes the same one.
        """
        if self._namespace is None:
            import hashlib
            import json

            identity = {
                "endpoints": {
                    name: [ep.provider, ep.model, ep.base_url]
                    for name, ep in sorted(self.policy.endpoints.items())
                },
                "routes": {n: list(r.endpoints) for n, r in sorted(self.policy.routes.items())},
            }
            digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
            self._namespace = digest[:12]
        return self._namespace

    def _cache_error(self, action: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._cache_error_logged >= _CACHE_ERROR_LOG_EVERY:
            self._cache_error_logged = now
            _log.warning(
                "failover: cache %s failed (%s: %s); calls go on without it",
                action,
                type(exc).__name__,
                exc,
                extra={"failover_cache_backend": self.policy.cache.kind},
            )

    def _cache_fresh(
        self,
        route: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        state: CallState,
    ) -> tuple[str | None, Response | None]:
        """The request's cache key (None: no cache on this route), and a fresh hit to serve."""
        settings = self.policy.routes[route].cache
        if settings is None:
            return None, None
        from .cache._backends import cache_key

        key = cache_key(route, messages, params)
        if settings.serve != "fresh":
            return key, None
        return key, self._cached_response(state, key, settings.ttl)

    def _cached_response(self, state: CallState, key: str, max_age: float) -> Response | None:
        try:
            entry = self._cache_backend().get(key)
        except Exception as exc:
            self._cache_error("read", exc)
            return None
        if entry is None:
            return None
        age = max(time.time() - entry.created_at, 0.0)
        if age > max_age:
            return None
        latency = state.elapsed()
        emit(
            self._hear.served_from_cache,
            ServedFromCache(
                state.route,
                entry.endpoint,
                age,
                latency,
                len(state.attempts),
                state.call_id,
                state.request_chars,
            ),
        )
        self._call_finished(
            state,
            entry.endpoint,
            "ok",
            from_cache=True,
            model=entry.model,
            provider=entry.provider,
            usage=Usage(entry.input_tokens, entry.output_tokens),
        )
        return Response(
            text=entry.text,
            endpoint=entry.endpoint,
            provider=entry.provider,
            model=entry.model,
            attempts=tuple(state.attempts),
            latency=latency,
            usage=Usage(entry.input_tokens, entry.output_tokens),
            stop_reason=entry.stop_reason,
            from_cache=True,
            cache_age=age,
        )

    def _cache_store(self, route: str, key: str | None, response: Response) -> None:
        if key is None:
            return
        from .cache._backends import MAX_ENTRY_BYTES, CacheEntry

        if len(response.text.encode("utf-8")) > MAX_ENTRY_BYTES:
            return
        settings = self.policy.routes[route].cache
        assert settings is not None
        entry = CacheEntry(
            text=response.text,
            endpoint=response.endpoint,
            provider=response.provider,
            model=response.model,
            created_at=time.time(),
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            stop_reason=response.stop_reason,
        )
        try:
            self._cache_backend().put(key, entry, max(settings.ttl, settings.stale_if_error))
        except Exception as exc:
            self._cache_error("write", exc)

    def _cache_fallback(
        self, state: CallState, key: str | None, last: BaseException | None
    ) -> Response:
        """Every endpoint failed: a stale answer within stale_if_error, or raise."""
        if key is not None:
            settings = self.policy.routes[state.route].cache
            assert settings is not None
            cached = self._cached_response(state, key, settings.stale_if_error)
            if cached is not None:
                return cached
        raise self._all_failed(state) from _cause(last)

    # --- status and lifecycle -------------------------------------------------------
    def status(self) -> list[EndpointStatus]:
        """Each endpoint's breaker state, failure counts and recent latency."""
        for route in self.policy.routes:
            self._endpoints(route)
        now_wall, now_mono = time.time(), self._clock.monotonic()
        recent = self._stats.snapshot()
        out = []
        for (name, _), breaker in self._breakers.items():
            ep = self.policy.endpoints[name]
            snap = breaker.snapshot()
            stats = recent.get(name)
            out.append(
                EndpointStatus(
                    name=breaker.name,
                    provider=ep.provider,
                    model=ep.model,
                    state=snap.state,
                    consecutive_failures=snap.consecutive_failures,
                    window_calls=snap.window_calls,
                    window_failures=snap.window_failures,
                    total_successes=snap.total_successes,
                    total_failures=snap.total_failures,
                    opened_at=_wall(snap.opened_at, now_wall, now_mono),
                    retry_at=_wall(snap.retry_at, now_wall, now_mono),
                    latency_p50=stats.p50 if stats else None,
                    latency_p95=stats.p95 if stats else None,
                    latency_p99=stats.p99 if stats else None,
                    recent_calls=stats.calls if stats else 0,
                    recent_errors=dict(stats.errors) if stats else {},
                    recent_skipped=stats.skipped if stats else 0,
                )
            )
        return out

    def breaker(self, endpoint: str) -> Breaker:
        """The breaker of ``endpoint`` (as its own routes use it), for inspection or tests."""
        for route in self.policy.routes:
            self._endpoints(route)
        for (name, _), breaker in self._breakers.items():
            if name == endpoint:
                return breaker
        raise KeyError(endpoint)

    def close(self) -> None:
        """Close every provider client's connections, and the cache."""
        for provider in self._providers.values():
            provider.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    async def aclose(self) -> None:
        """Close every provider client's connections (async clients of this loop too)."""
        for provider in self._providers.values():
            await provider.aclose()
        self.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Router(routes={list(self.policy.routes)!r}, source={self.policy.source!r})"


def _cause(exc: BaseException | None) -> BaseException | None:
    """The provider's own exception behind an attempt's failure, if any."""
    return None if exc is None else exc.__cause__


def _request_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    """The size of the messages' text, for logs and spans (never the text itself)."""
    size = 0
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            size += sum(
                len(str(block.get("text", ""))) for block in content if isinstance(block, Mapping)
            )
    return size


def _wall(mono: float | None, now_wall: float, now_mono: float) -> float | None:
    return None if mono is None else now_wall - (now_mono - mono)
