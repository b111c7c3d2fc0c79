"""One call through a route: the single loop that every way of calling drives.

:meth:`RouteCall.plan` is a generator that walks the route's endpoints and yields what
it needs done, one step at a time: :class:`Send` a request, :class:`Sleep` before a
retry, :class:`Relay` a stream's deltas to the caller, :class:`Deliver` a cached answer.
The driver does the I/O and sends the outcome back in (a provider's failure is thrown
in). ``Router.complete`` and ``acomplete``, both stream classes and ``failover simulate``
are such drivers, a dozen lines each, so what a failure means, when to retry, when to
fail over and when to give up is decided here alone (with :func:`failover._retry.decide`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ._errors import AllEndpointsFailed, DeadlineExceeded, RequestError, StreamInterrupted
from ._events import (
    AttemptFinished,
    AttemptStarted,
    Audience,
    CallFinished,
    DeadlineReached,
    FailedOver,
    PanicTrial,
    RetryScheduled,
    ServedFromCache,
    emit,
)
from ._response import Attempt, Response, Usage
from ._retry import Decision, RetryBudget, decide, retry_delay
from .conversation._answer import finish_reason
from .providers._base import ProviderFailure, ProviderRequest, ProviderResult

if TYPE_CHECKING:
    from ._clock import Clock
    from ._failures import Failure
    from .breaker._breaker import Breaker, Permit
    from .cache._backends import CacheEntry
    from .cache._fallback import FallbackCache
    from .providers import Provider

__all__ = ["Deliver", "Relay", "RouteCall", "RouteEndpoint", "Send", "Sleep", "Step"]


@dataclass(slots=True, eq=False)
class RouteEndpoint:
    """An endpoint as one route uses it: settings merged, breaker and client attached."""

    name: str
    provider_name: str
    model: str
    params: Mapping[str, Any]
    timeout: Any  # TimeoutPolicy
    retry: Any  # RetryPolicy
    breaker: Breaker
    provider: Provider
    budget: RetryBudget | None = None
    prefill: bool = True
    first_token: float | None = None


class Sleep(NamedTuple):
    """Wait before a retry."""

    seconds: float


class Send(NamedTuple):
    """Send ``request`` to ``endpoint`` with socket operations bounded by ``budget`` seconds.

    For a stream, open it and wait at most ``budget`` for its first item; the outcome
    sent back is ``(items, first_item)``. Otherwise the outcome is the ProviderResult.
    """

    endpoint: RouteEndpoint
    request: ProviderRequest
    budget: float


class Relay(NamedTuple):
    """Pass a stream's text to the caller (through :meth:`RouteCall.shown`) until its end.

    ``first`` is the item already read; each later wait is bounded by ``idle`` seconds.
    The outcome sent back is the final ProviderResult.
    """

    endpoint: RouteEndpoint
    items: Any
    first: Any
    idle: float


class Deliver(NamedTuple):
    """Give the caller a whole text at once (a cached answer in a stream)."""

    text: str


class Restart(NamedTuple):
    """The text given so far is void: the answer starts again on ``endpoint``."""

    endpoint: str


class Acquire(NamedTuple):
    """Ask ``endpoint``'s shared breaker for a permit (``await breaker.aacquire()``); only
    a plan driven on an event loop yields it, and only when Redis must be asked."""

    endpoint: RouteEndpoint


class Lookup(NamedTuple):
    """Read the fallback cache (``await cache.alookup(key, max_age)``); as :class:`Acquire`,
    only on an event loop and only for a coroutine backend (Redis)."""

    key: str
    max_age: float


Step = Sleep | Send | Relay | Deliver | Restart | Acquire | Lookup

# The share of its reset_timeout a breaker must have been open for a panic trial.
PANIC_AFTER = 0.1


class _GaveUp(NamedTuple):
    """An endpoint gave up: why, and whether the route stops (deadline) or fails over."""

    reason: str
    stop: bool
    cause: BaseException | None


class RouteCall:
    """One call's state as it moves through a route.

    Args:
        route: the route's settings (``RoutePolicy``).
        endpoints: the route's endpoints, in order of preference.
        messages: the request's messages; ``params``: every other keyword.
        clock: where time comes from; ``hear``: who listens to which events.
        rand: backoff jitter's random source.
        cache: the Router's fallback cache (used only where the route sets ``cache:``).
        call_id: ties this call's events together.
        stream: whether the caller streams (steps :class:`Relay` and :class:`Deliver`).
        restartable: whether the caller can take a restarted answer (``s.events()``).
    """

    def __init__(
        self,
        route: Any,
        endpoints: Sequence[RouteEndpoint],
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        *,
        clock: Clock,
        hear: Audience,
        rand: Callable[[], float],
        cache: FallbackCache | None,
        call_id: int,
        request_chars: int,
        stream: bool = False,
        restartable: bool = False,
        aio: bool = False,
    ) -> None:
        self.route = route.name
        self.endpoints = endpoints
        self.messages = messages
        self.params = params
        self.clock = clock
        self.hear = hear
        self.rand = rand
        self.call_id = call_id
        self.request_chars = request_chars
        self.stream = stream
        self.on_interrupt: str = route.on_interrupt
        self.restartable = restartable or route.on_interrupt == "restart"
        self.aio = aio
        self.cache_settings = route.cache
        self.cache = cache if route.cache is not None else None
        self.start = clock.monotonic()
        self.deadline: float = self.start + route.deadline
        self.attempts: list[Attempt] = []
        self.deadline_hit = False
        self.finished = False
        self.parts: list[str] = []
        self._seam = False
        self._key: str | None = None
        self._interruption: ProviderFailure | None = None

    # --- time ---------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the call started."""
        return self.clock.monotonic() - self.start

    def remaining(self) -> float:
        """Seconds left before the route's deadline."""
        return self.deadline - self.clock.monotonic()

    def _share_end(self, index: int, ep: RouteEndpoint) -> tuple[float, bool]:
        """Until when ``ep`` may take the call, and whether other endpoints remain.

        While endpoints that may answer remain after this one, it gets an even share of
        the time left, never less than its connect timeout unless that would take more
        than half of what is left; the last endpoint gets all of it.
        """
        others = sum(1 for later in self.endpoints[index + 1 :] if later.breaker.state != "open")
        if not others:
            return self.deadline, False
        now = self.clock.monotonic()
        left = self.deadline - now
        share: float = max(left / (others + 1), min(ep.timeout.connect, left / 2))
        return min(now + share, self.deadline), True

    # --- the loop -----------------------------------------------------------------------
    def plan(self) -> Generator[Step, Any, Response]:
        """Walk the route; yield the I/O it needs; return the Response (or raise)."""
        try:
            if self.cache is not None:
                self._key = self.cache.key(self.route, self.messages, self.params)
                if self.cache_settings.serve == "fresh":
                    cached = yield from self._cached(self.cache_settings.ttl)
                    if cached is not None:
                        if self.stream:
                            yield Deliver(cached.text)
                        return cached
            last: BaseException | None = None
            messages = self.messages
            for index, ep in enumerate(self.endpoints):
                outcome = yield from self._endpoint(index, ep, messages, None)
                if isinstance(outcome, Response):
                    return outcome
                if isinstance(outcome, list):  # continue the broken stream here
                    messages = outcome
                    continue
                last = outcome.cause or last
                self._failed_over(ep, index, outcome.reason, outcome.stop)
                if outcome.stop:
                    break
            if self.parts:
                raise self._interrupted_unrescued(last)
            return (yield from self._last_resort(messages, last))
        except BaseException as exc:  # RequestError, interruption, cancellation: still ended
            self._finished(None, "error", error=_ended_by(exc))
            raise

    def _last_resort(
        self, messages: Sequence[Mapping[str, Any]], last: BaseException | None
    ) -> Generator[Step, Any, Response]:
        """Every endpoint failed: a stale cached answer, else one panic trial, else raise."""
        if self.attempts and all(a.error == "unsupported" for a in self.attempts):
            raise self._untakeable() from last
        cached = None
        if self._key is not None:
            cached = yield from self._cached(self.cache_settings.stale_if_error)
        if cached is not None:
            if self.stream:
                yield Deliver(cached.text)
            return cached
        panic = self._panic()
        if panic is not None:
            index, ep, permit = panic
            outcome = yield from self._endpoint(index, ep, messages, permit)
            if isinstance(outcome, Response):
                return outcome
            if isinstance(outcome, _GaveUp):
                last = outcome.cause or last
        raise self._all_failed() from last

    def _endpoint(
        self,
        index: int,
        ep: RouteEndpoint,
        messages: Sequence[Mapping[str, Any]],
        panic: Permit | None,
    ) -> Generator[Step, Any, Response | _GaveUp | list[dict[str, Any]]]:
        """Try one endpoint, with retries; its Response, or why it gave up."""
        until, others = self._share_end(index, ep)
        tries = 0
        while True:
            now = self.clock.monotonic()
            if self.deadline - now <= 0:
                self.deadline_hit = True
                return _GaveUp("deadline reached", True, None)
            if panic is not None:
                permit: Permit | None = panic
            elif self.aio:  # on an event loop: Redis is asked with redis.asyncio
                permit = yield from self._aadmit(ep)
            else:
                permit = ep.breaker.acquire()
            if permit is None:
                self._skipped(ep, tries)
                return _GaveUp("breaker open", False, None)
            if tries == 0 and ep.budget is not None:
                ep.budget.called(now)
            left = until - now
            request = self._request(ep, messages, tries, permit, left)
            t0 = self.clock.monotonic()
            first_token = ep.first_token if self.stream else None
            budget = left if first_token is None else min(left, first_token)
            try:
                got = yield Send(ep, request, budget)
                if not self.stream:
                    return self._succeeded(ep, permit, got, t0, tries)
                items, first = got
                try:
                    result = yield Relay(ep, items, first, ep.timeout.stream_idle)
                except ProviderFailure as err:
                    if not self.parts:
                        raise  # no text yet: an ordinary failure, retried as any other
                    return (yield from self._broke(index, ep, permit, err, t0, tries, request))
                return self._succeeded(ep, permit, self._whole(result), t0, tries)
            except ProviderFailure as err:
                failure = self._relabel(err.failure, t0, first_token, budget)
                self._attempt_failed(ep, permit, failure, t0, tries, request)
                if failure.is_request_error:
                    rejected = self._rejected(ep, failure, err)
                    raise rejected from rejected.__cause__  # the cut's, after text
                tries += 1
                decision = self._decide(ep, failure, tries, until, others, panic is not None)
                if decision.action != "retry":
                    if decision.action == "stop":
                        self.deadline_hit = True
                        return _GaveUp("deadline reached", True, err.__cause__)
                    return _GaveUp(failure.kind, False, err.__cause__)
                delay = decision.delay
                self._retry_scheduled(ep, failure, tries, delay)
                yield Sleep(delay)
            except BaseException:
                permit.release()
                raise

    @staticmethod
    def _aadmit(ep: RouteEndpoint) -> Generator[Step, Any, Permit | None]:
        """A permit from ``ep``'s breaker, yielding :class:`Acquire` if Redis must be asked."""
        permit = ep.breaker.acquire_nowait()
        if permit is False:
            admitted: Permit | None = yield Acquire(ep)
            return admitted
        return permit

    def _decide(
        self,
        ep: RouteEndpoint,
        failure: Failure,
        tries: int,
        until: float,
        others: bool,
        panic: bool,
    ) -> Decision:
        now = self.clock.monotonic()
        decision = decide(
            ep.retry,
            failure,
            tries,
            retry_delay(ep.retry, failure, tries - 1, self.rand),
            left=until - now,
            route_left=self.deadline - now,
            others=others,
            budget=ep.budget,
            now=now,
        )
        if panic and decision.action == "retry":  # a panic trial is one request
            return decision._replace(action="fail over")
        return decision

    def _relabel(
        self, failure: Failure, t0: float, first_token: float | None, budget: float
    ) -> Failure:
        """Name a timeout after the limit that ended it, and a pre-text cut a lost connection."""
        kind = failure.kind
        if kind == "stream_cut":  # nothing was yielded: as safe to retry as a refused one
            return dataclasses.replace(failure, kind="connect")
        if kind not in ("timeout", "deadline"):
            return failure
        if self.remaining() <= 0.001:
            self.deadline_hit = True
            return dataclasses.replace(failure, kind="deadline", detail="deadline reached")
        waited = self.clock.monotonic() - t0
        if first_token is not None and budget == first_token and waited >= first_token * 0.98:
            return dataclasses.replace(
                failure, kind="first_token", detail=f"no first token in {first_token:g} s"
            )
        if kind == "deadline":  # the endpoint's share of the deadline ran out, not the route's
            return dataclasses.replace(failure, kind="timeout", detail="its share of the deadline")
        return failure

    def _broke(
        self,
        index: int,
        ep: RouteEndpoint,
        permit: Permit,
        err: ProviderFailure,
        t0: float,
        tries: int,
        request: ProviderRequest,
    ) -> Generator[Step, Any, _GaveUp | list[dict[str, Any]]]:
        """A stream broke after text: continue, restart or raise, as the route says."""
        failure = err.failure
        if failure.kind in ("timeout", "deadline", "stream_idle"):
            failure = dataclasses.replace(
                failure, kind="stream_idle", detail=f"no delta in {ep.timeout.stream_idle:g} s"
            )
        elif failure.kind in ("connect", "unknown"):
            failure = dataclasses.replace(failure, kind="stream_cut")
        self._attempt_failed(ep, permit, failure, t0, tries, request)
        following = self.endpoints[index + 1] if index + 1 < len(self.endpoints) else None
        can_go_on = following is not None and self.remaining() > 0
        if can_go_on and following is not None:
            if self.on_interrupt == "continue" and following.prefill:
                self._failed_over(ep, index, f"{failure.kind} after text; continuing", False)
                self._seam = True
                self._interruption = err
                return _continuation(self.messages, self.text)
            if self.on_interrupt in ("continue", "restart") and self.restartable:
                self._failed_over(ep, index, f"{failure.kind} after text; restarting", False)
                self.parts.clear()
                yield Restart(following.name)
                return list(map(dict, self.messages))
        raise StreamInterrupted(
            f"stream from {ep.name} broke after {len(self.text)} characters"
            f" ({failure.kind}: {failure.detail or 'no detail'}); the partial text is not a"
            " complete answer",
            partial_text=self.text,
            attempts=self.attempts,
        ) from err.__cause__

    # --- bookkeeping --------------------------------------------------------------------
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
        request = ProviderRequest(
            messages=messages,
            params=params,
            connect_timeout=min(timeout.connect, left),
            read_timeout=min(timeout.read, left),
            idle_timeout=timeout.stream_idle,
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
        self.attempts.append(
            Attempt(ep.name, "skipped", error="breaker_open", retry=retry, detail="breaker open")
        )
        if self.hear.attempt_finished:
            emit(
                self.hear.attempt_finished,
                AttemptFinished(
                    self.route,
                    ep.name,
                    ep.model,
                    retry,
                    "skipped",
                    0.0,
                    self.elapsed(),
                    error="breaker_open",
                    call_id=self.call_id,
                    request_chars=self.request_chars,
                ),
            )

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
        self.attempts.append(
            Attempt(
                ep.name, "error", failure.kind, failure.status_code, latency, retry, failure.detail
            )
        )
        if self.hear.attempt_finished:
            emit(
                self.hear.attempt_finished,
                AttemptFinished(
                    self.route,
                    ep.name,
                    ep.model,
                    retry,
                    "error",
                    latency,
                    self.elapsed(),
                    status_code=failure.status_code,
                    error=failure.kind,
                    detail=failure.detail,
                    request_id=failure.request_id,
                    timeout=request.read_timeout,
                    call_id=self.call_id,
                    provider=ep.provider_name,
                    request_chars=self.request_chars,
                ),
            )

    def _succeeded(
        self, ep: RouteEndpoint, permit: Permit, result: ProviderResult, t0: float, retry: int
    ) -> Response:
        latency = self.clock.monotonic() - t0
        permit.success(latency)
        self.attempts.append(Attempt(ep.name, "ok", latency=latency, retry=retry))
        if self.hear.attempt_finished:  # the happy path builds no event nobody hears
            emit(
                self.hear.attempt_finished,
                AttemptFinished(
                    self.route,
                    ep.name,
                    ep.model,
                    retry,
                    "ok",
                    latency,
                    self.elapsed(),
                    request_id=result.request_id,
                    call_id=self.call_id,
                    provider=ep.provider_name,
                    input_tokens=result.usage.input_tokens,
                    output_tokens=result.usage.output_tokens,
                    request_chars=self.request_chars,
                ),
            )
        response = Response(
            text=result.text,
            endpoint=ep.name,
            provider=ep.provider_name,
            model=result.model,
            attempts=tuple(self.attempts),
            latency=self.elapsed(),
            usage=result.usage,
            stop_reason=result.stop_reason,
            raw=result.raw,
            tool_calls=result.tool_calls,
            # An adapter of the caller's own may give only the provider's stop reason.
            finish_reason=result.finish_reason or finish_reason(result.stop_reason),
            thinking=result.thinking,
        )
        self._finished(ep.name, "ok", response.model, ep.provider_name, response.usage)
        if self._key is not None and self.cache is not None:
            settings = self.cache_settings
            self.cache.store(self._key, response, max(settings.ttl, settings.stale_if_error))
        return response

    def _whole(self, result: ProviderResult) -> ProviderResult:
        """A stream's final result with the text the caller was given, seams and all."""
        return dataclasses.replace(result, text=self.text)

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

    # --- the cache and the last resort --------------------------------------------------
    def _cached(self, max_age: float) -> Generator[Step, Any, Response | None]:
        """The cached answer to this request, if at most ``max_age`` old."""
        assert self.cache is not None
        assert self._key is not None
        if self.aio and self.cache.is_async:
            found = yield Lookup(self._key, max_age)
        else:
            found = self.cache.lookup(self._key, max_age)
        return None if found is None else self._from_cache(found)

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
            attempts=tuple(self.attempts),
            latency=latency,
            usage=usage,
            stop_reason=entry.stop_reason,
            from_cache=True,
            cache_age=age,
            tool_calls=entry.tool_calls,
            finish_reason=entry.finish_reason or finish_reason(entry.stop_reason),
            thinking=entry.thinking,
        )

    def _panic(self) -> tuple[int, RouteEndpoint, Permit] | None:
        """No endpoint answered and some were skipped by an open breaker: one trial to a
        skipped one, as Envoy's panic mode, rather than failing the call untried there.

        Of the skipped endpoints whose breaker is open, the one that opened longest ago
        gets a half-open trial permit now (the next, if another caller's trial holds it);
        its outcome drives that breaker as any trial's would. A breaker is eligible once it
        has been open for a tenth of its ``reset_timeout``, so a full outage sends each
        endpoint at most about ten trials per ``reset_timeout``, not one per call.
        """
        if self.deadline_hit or self.remaining() <= 0:
            return None
        skipped = {a.endpoint for a in self.attempts if a.outcome == "skipped"}
        if not skipped:
            return None
        now = self.clock.monotonic()
        opened = []
        for index, ep in enumerate(self.endpoints):
            if ep.name not in skipped or ep.breaker.state != "open":
                continue
            at = ep.breaker.snapshot().opened_at
            if at is not None and now - at >= ep.breaker.policy.reset_timeout * PANIC_AFTER:
                opened.append((at, index))
        for _, index in sorted(opened):
            ep = self.endpoints[index]
            permit = ep.breaker.panic()
            if permit is not None:
                if self.hear.panic_trial:
                    emit(self.hear.panic_trial, PanicTrial(self.route, ep.name, self.call_id))
                return index, ep, permit
        return None

    # --- what the caller sees of a stream -----------------------------------------------
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


def _continuation(messages: Sequence[Mapping[str, Any]], partial: str) -> list[dict[str, Any]]:
    # Anthropic rejects a prefill that ends in white space; the continuation supplies it.
    return [*map(dict, messages), {"role": "assistant", "content": partial.rstrip()}]


def _kind_of(err: ProviderFailure | None) -> str:
    return "interrupted" if err is None else err.failure.kind


def _ended_by(exc: BaseException) -> str:
    """How a call that did not answer ended, for its CallFinished event."""
    if isinstance(exc, GeneratorExit) or type(exc).__name__ == "CancelledError":
        return "cancelled"
    return type(exc).__name__
