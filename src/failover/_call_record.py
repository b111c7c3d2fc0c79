"""One call's record: its state, the events it emits, the Response or error it ends with.

:class:`CallRecord` is the bookkeeping half of a :class:`~failover._route_call.RouteCall`:
everything the plan notes down as it goes (attempts, events, timings, the text a stream
gave) and the objects a call ends with. The decisions live in the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from ._errors import AllEndpointsFailed, DeadlineExceeded, RequestError, StreamInterrupted
from ._events import (
    AttemptFinished,
    AttemptStarted,
    Audience,
    CallFinished,
    DeadlineReached,
    FailedOver,
    RetryScheduled,
    ServedFromCache,
    emit,
)
from ._frozen import new_tuple
from ._response import Attempt, Response, Usage
from ._steps import RouteEndpoint
from .conversation._answer import finish_reason
from .providers._base import ProviderFailure, ProviderRequest, ProviderResult

if TYPE_CHECKING:
    from ._clock import Clock
    from ._failures import Failure
    from .breaker._breaker import Permit
    from .cache._backends import CacheEntry
    from .cache._fallback import FallbackCache
    from .instrumentation._stats import StatsListener

__all__ = ["CallRecord", "RouteShared"]


class RouteShared(NamedTuple):
    """What every call of one route shares, made once per route (see :meth:`CallRecord.shared`)."""

    route: str
    endpoints: tuple[RouteEndpoint, ...]
    clock: Clock
    hear: Audience
    rand: Callable[[], float]
    stats: StatsListener | None
    cache: FallbackCache | None
    cache_settings: Any  # the route's CachePolicy, None without cache:
    deadline: float
    on_interrupt: str


class CallRecord:
    """One call's state as it moves through a route, and its record.

    Args:
        shared: what every call of the route shares (:meth:`shared`), made once.
        messages: the request's messages; ``params``: every other keyword.
        call_id: ties this call's events together.
        stream: whether the caller streams (steps :class:`Relay` and :class:`Deliver`).
        restartable: whether the caller can take a restarted answer (``s.events()``).
        aio: whether the plan is driven on an event loop (shared state is then asked
            with ``redis.asyncio``: steps :class:`Acquire` and :class:`Lookup`).
    """

    @staticmethod
    def shared(
        route: Any,
        endpoints: Sequence[RouteEndpoint],
        *,
        clock: Clock,
        hear: Audience,
        rand: Callable[[], float],
        cache: FallbackCache | None,
        stats: StatsListener | None = None,
    ) -> RouteShared:
        """What every call of ``route`` shares, to make once and give to each call.

        Args:
            route: the route's settings (``RoutePolicy``).
            endpoints: the route's endpoints, in order of preference.
            clock: where time comes from; ``hear``: who listens to which events.
            rand: backoff jitter's random source.
            cache: the Router's fallback cache (used only where the route sets ``cache:``).
            stats: the Router's stats listener, told of every attempt directly.
        """
        return RouteShared(
            route.name,
            tuple(endpoints),
            clock,
            hear,
            rand,
            stats,
            cache if route.cache is not None else None,
            route.cache,
            route.deadline,
            route.on_interrupt,
        )

    def __init__(
        self,
        shared: RouteShared,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        call_id: int,
        *,
        stream: bool = False,
        restartable: bool = False,
        aio: bool = False,
    ) -> None:
        (
            self.route,
            self.endpoints,
            self.clock,
            self.hear,
            self.rand,
            self.stats,
            self.cache,
            self.cache_settings,
            span,
            on_interrupt,
        ) = shared
        self.messages = messages
        self.params = params
        self.call_id = call_id
        if stream:  # what only a stream needs; the rest keep the class's defaults
            self.stream = True
            self.on_interrupt = on_interrupt
            self.restartable = restartable or on_interrupt == "restart"
            self.parts = []
        if aio:
            self.aio = True
        self.start = self.clock.monotonic()
        self.deadline: float = self.start + span

    # Defaults a call changes only when something happens (a deadline, a stream, a cut):
    # set here once rather than on every call.
    stream = False
    aio = False
    on_interrupt = "raise"
    restartable = False
    # A stream gets its own list; any other call keeps this empty tuple (appending to it
    # would fail loudly rather than leak text between calls).
    parts: list[str] = cast("list[str]", ())
    deadline_hit = False
    finished = False
    # Every attempt so far, in order: a tuple, as the Response and the errors hold it.
    attempts: tuple[Attempt, ...] = ()
    _chars = -1
    _seam = False
    _key: str | None = None
    _interruption: ProviderFailure | None = None

    @property
    def request_chars(self) -> int:
        """The size of the messages' text, for logs and spans (never the text itself);
        counted when an event first needs it."""
        if self._chars < 0:
            self._chars = _request_chars(self.messages)
        return self._chars

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return self.clock.monotonic() - self.start

    def remaining(self) -> float:
        """Seconds left before the route's deadline."""
        return self.deadline - self.clock.monotonic()

    def _request(
        self,
        ep: RouteEndpoint,
        messages: Sequence[Mapping[str, Any]],
        retry: int,
        permit: Permit,
        left: float,
    ) -> ProviderRequest:
        timeout = ep.timeout
        params = {**ep.params, **self.params} if ep.params else self.params
        # ProviderRequest(messages, params, connect, read, idle), without the named
        # tuple's __new__ (a Python function): this runs on every request.
        request: ProviderRequest = new_tuple(
            ProviderRequest,
            (
                messages,
                params,
                timeout.connect if timeout.connect < left else left,
                timeout.read if timeout.read < left else left,
                timeout.stream_idle,
            ),
        )
        if self.hear.attempt_started:
            emit(
                self.hear.attempt_started,
                AttemptStarted(
                    self.route,
                    ep.name,
                    ep.model,
                    retry,
                    self.call_id,
                    request.read_timeout,
                    self.elapsed(),
                    ep.provider_name,
                    permit.trial,
                ),
            )
        return request

    def _skipped(self, ep: RouteEndpoint, retry: int) -> None:
        skipped = Attempt(ep.name, "skipped", "breaker_open", retry=retry, detail="breaker open")
        self._noted(ep, skipped, bool(self.hear.attempt_finished))

    def _attempt_failed(
        self,
        ep: RouteEndpoint,
        permit: Permit,
        failure: Failure,
        t0: float,
        retry: int,
        request: ProviderRequest,
    ) -> None:
        if failure.counts_against_breaker:
            permit.failure()
        else:
            permit.release()
        latency = self.clock.monotonic() - t0
        kind, status = failure.kind, failure.status_code
        failed = Attempt(ep.name, "error", kind, status, latency, retry, failure.detail)
        self._noted(
            ep,
            failed,
            bool(self.hear.attempt_finished),
            status_code=status,
            detail=failure.detail,
            request_id=failure.request_id,
            timeout=request.read_timeout,
        )

    def _noted(self, ep: RouteEndpoint, attempt: Attempt, heard: bool, **extra: Any) -> None:
        """Note one attempt: in the call's list, in the stats, and as an event if heard."""
        self.attempts += (attempt,)
        if self.stats is not None:
            self.stats.attempt(ep.name, attempt.outcome, attempt.latency, attempt.error)
        if heard:
            self._heard(ep, attempt, **extra)

    def _heard(self, ep: RouteEndpoint, attempt: Attempt, **extra: Any) -> None:
        emit(
            self.hear.attempt_finished,
            AttemptFinished(
                self.route,
                ep.name,
                ep.model,
                attempt.retry,
                attempt.outcome,
                attempt.latency,
                self.elapsed(),
                error=attempt.error,
                call_id=self.call_id,
                provider=ep.provider_name,
                request_chars=self.request_chars,
                **extra,
            ),
        )

    def _succeeded(
        self, ep: RouteEndpoint, permit: Permit, result: ProviderResult, t0: float, retry: int
    ) -> Response:
        now = self.clock.monotonic()
        latency = now - t0
        ok = Attempt(ep.name, "ok", None, None, latency, retry, "")
        self.attempts += (ok,)
        # A healthy endpoint's success waits in its breaker's ledger, which hands it to
        # the stats later; any other is recorded now.
        if not permit.succeeded(now, latency) and self.stats is not None:
            self.stats.attempt(ep.name, "ok", latency, None)
        gate = self.hear.ok_gate
        if gate is not None and gate():  # else the happy path: no event to build
            usage = result.usage
            self._heard(
                ep,
                ok,
                request_id=result.request_id,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
            )
        response = Response(  # positional: no keyword matching, on every call
            result.text,
            ep.name,
            ep.provider_name,
            result.model,
            self.attempts,
            now - self.start,
            result.usage,
            result.stop_reason,
            False,  # from_cache
            None,  # cache_age
            result.raw,
            result.tool_calls,
            # An adapter of the caller's own may give only the provider's stop reason.
            result.finish_reason or finish_reason(result.stop_reason),
            result.thinking,
        )
        self._finished(ep.name, "ok", response.model, ep.provider_name, response.usage)
        if self._key is not None and self.cache is not None:
            settings = self.cache_settings
            self.cache.store(self._key, response, max(settings.ttl, settings.stale_if_error))
        return response

    def _whole(self, result: ProviderResult) -> ProviderResult:
        """A stream's final result with the text the caller was given, seams and all."""
        return result._replace(text=self.text)

    def _retry_scheduled(
        self, ep: RouteEndpoint, failure: Failure, tries: int, delay: float
    ) -> None:
        if not self.hear.retry_scheduled:
            return
        reason = failure.kind if failure.retry_after is None else f"{failure.kind}, retry-after"
        emit(
            self.hear.retry_scheduled,
            RetryScheduled(
                self.route,
                ep.name,
                tries,
                delay,
                reason,
                self.elapsed(),
                self.call_id,
                self.request_chars,
            ),
        )

    def _failed_over(self, ep: RouteEndpoint, index: int, reason: str, stop: bool) -> None:
        following = None
        if not stop and index + 1 < len(self.endpoints):
            following = self.endpoints[index + 1].name
        if self.hear.failed_over:
            emit(
                self.hear.failed_over,
                FailedOver(
                    self.route,
                    ep.name,
                    following,
                    reason,
                    self.elapsed(),
                    self.call_id,
                    self.request_chars,
                ),
            )

    def _rejected(self, ep: RouteEndpoint, failure: Failure, err: ProviderFailure) -> Exception:
        """The error for a request the endpoint rejected (keeping any partial text)."""
        status = f"HTTP {failure.status_code}" if failure.status_code else failure.kind
        if self.parts:
            cut = self._interruption
            message = (
                f"stream broke after {len(self.text)} characters"
                f" ({_kind_of(cut)}); {ep.name} rejected the continuation ({status}):"
                f" {failure.detail}; the partial text is not a complete answer"
            )
            error = StreamInterrupted(message, partial_text=self.text, attempts=self.attempts)
            error.__cause__ = cut.__cause__ if cut is not None else err.__cause__
            return error
        rejected = RequestError(
            f"{ep.name} rejected the request ({status}): {failure.detail}",
            endpoint=ep.name,
            status_code=failure.status_code,
            attempts=self.attempts,
        )
        rejected.__cause__ = err.__cause__
        return rejected

    def _untakeable(self) -> RequestError:
        """No endpoint of the route can take the request: the caller must change it."""
        lines = "; ".join(f"{a.endpoint}: {a.detail}" for a in self.attempts)
        return RequestError(
            f"no endpoint of route {self.route!r} can take the request ({lines})",
            endpoint=self.attempts[-1].endpoint,
            status_code=None,
            attempts=self.attempts,
        )

    def _interrupted_unrescued(self, last: BaseException | None) -> StreamInterrupted:
        """After text, neither the cache nor a plain error may stand in for the answer."""
        error = StreamInterrupted(
            f"stream broke after {len(self.text)} characters and no endpoint could"
            " continue it; the partial text is not a complete answer",
            partial_text=self.text,
            attempts=self.attempts,
        )
        error.__cause__ = last
        return error

    def _all_failed(self) -> AllEndpointsFailed:
        elapsed = self.elapsed()
        if self.deadline_hit:
            deadline = self.deadline - self.start
            if self.hear.deadline_reached:
                emit(
                    self.hear.deadline_reached,
                    DeadlineReached(
                        self.route,
                        deadline,
                        elapsed,
                        call_id=self.call_id,
                        request_chars=self.request_chars,
                    ),
                )
            return DeadlineExceeded(
                self.route,
                self.attempts,
                reason=f"deadline of {deadline:.3g} s reached after {elapsed:.3f} s",
            )
        return AllEndpointsFailed(self.route, self.attempts)

    def _finished(
        self,
        endpoint: str | None,
        outcome: str,
        model: str | None = None,
        provider: str | None = None,
        usage: Usage | None = None,
        *,
        from_cache: bool = False,
        error: str | None = None,
    ) -> None:
        """Announce the end of the call, exactly once, whichever way it ended."""
        if self.finished:
            return
        self.finished = True
        if self.hear.call_finished:
            emit(
                self.hear.call_finished,
                CallFinished(
                    self.route,
                    endpoint,
                    outcome,
                    self.elapsed(),
                    len(self.attempts),
                    from_cache=from_cache,
                    call_id=self.call_id,
                    model=model,
                    provider=provider,
                    input_tokens=usage.input_tokens if usage else None,
                    output_tokens=usage.output_tokens if usage else None,
                    error=error,
                ),
            )

    def _from_cache(self, found: tuple[CacheEntry, float]) -> Response:
        entry, age = found
        latency = self.elapsed()
        if self.hear.served_from_cache:
            emit(
                self.hear.served_from_cache,
                ServedFromCache(
                    self.route,
                    entry.endpoint,
                    age,
                    latency,
                    len(self.attempts),
                    self.call_id,
                    self.request_chars,
                ),
            )
        usage = entry.usage()
        self._finished(entry.endpoint, "ok", entry.model, entry.provider, usage, from_cache=True)
        return Response(
            text=entry.text,
            endpoint=entry.endpoint,
            provider=entry.provider,
            model=entry.model,
            attempts=self.attempts,
            latency=latency,
            usage=usage,
            stop_reason=entry.stop_reason,
            from_cache=True,
            cache_age=age,
            tool_calls=entry.tool_calls,
            finish_reason=entry.finish_reason or finish_reason(entry.stop_reason),
            thinking=entry.thinking,
        )

    def shown(self, delta: str) -> str:
        """Record a delta for the caller; joined without doubled white space at a seam."""
        if self._seam:
            self._seam = False
            if self.parts and self.parts[-1][-1:].isspace():
                delta = delta.lstrip()
        if delta:
            self.parts.append(delta)
        return delta

    @property
    def text(self) -> str:
        """The text given to the caller so far."""
        return "".join(self.parts)


def _kind_of(err: ProviderFailure | None) -> str:
    return "interrupted" if err is None else err.failure.kind


def _request_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    """The size of the messages' text (strings and text blocks)."""
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
