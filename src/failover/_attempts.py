"""Calling one endpoint: breaker permit, deadline-bounded request, retries with tenacity.

The sync and async paths differ only in how they send and sleep; what an attempt counts
as, when to retry and what to record are the shared functions below. Imported on first
use (it imports tenacity and, through the breaker, pybreaker).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from . import _deadline
from ._breaker import Breaker, Permit
from ._clock import Clock
from ._events import AttemptFinished, AttemptStarted, Listener, RetryScheduled, emit
from ._failures import Failure
from ._policy import RetryPolicy, TimeoutPolicy
from ._providers import Call, Provider, ProviderFailure, Result
from ._response import Attempt
from ._retry import retry_delay, stop_reason

__all__ = [
    "AttemptFailed",
    "CallState",
    "Endpoint",
    "Skipped",
    "awith_retries",
    "call_async",
    "call_sync",
    "with_retries",
]


class AttemptFailed(Exception):
    """An attempt failed; raised ``from`` the provider's own exception."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail or failure.kind)
        self.failure = failure


class Skipped(Exception):
    """The endpoint's breaker turned the call away: no request was made."""


@dataclass(slots=True)
class Endpoint:
    """An endpoint as one route uses it: settings merged, breaker and client attached."""

    name: str
    provider_name: str
    model: str
    params: Mapping[str, Any]
    timeout: TimeoutPolicy
    retry: RetryPolicy
    breaker: Breaker
    provider: Provider


@dataclass(slots=True)
class CallState:
    """Everything one call accumulates as it moves through a route."""

    route: str
    clock: Clock
    start: float
    deadline: float
    listeners: Sequence[Listener]
    rand: Callable[[], float] = random.random
    attempts: list[Attempt] = field(default_factory=list)
    deadline_hit: bool = False
    call_id: int = 0
    finished: bool = False

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.start

    def remaining(self) -> float:
        return self.deadline - self.clock.monotonic()


def _prepare(
    ep: Endpoint,
    state: CallState,
    messages: Any,
    params: Mapping[str, Any],
    retry: int,
    permit: Permit,
) -> Call:
    remaining = state.remaining()
    merged = {**ep.params, **params} if ep.params else params
    call = Call(
        messages=messages,
        params=merged,
        connect_timeout=min(ep.timeout.connect, remaining),
        read_timeout=min(ep.timeout.read, remaining),
        idle_timeout=ep.timeout.stream_idle,
    )
    if state.listeners:
        emit(
            state.listeners,
            AttemptStarted(
                state.route,
                ep.name,
                ep.model,
                retry,
                state.call_id,
                call.read_timeout,
                state.elapsed(),
                ep.provider_name,
                permit.trial,
            ),
        )
    return call


def _acquire(ep: Endpoint, state: CallState, retry: int) -> Permit:
    if state.remaining() <= 0:
        state.deadline_hit = True
        raise AttemptFailed(Failure("timeout", detail="deadline reached"))
    permit = ep.breaker.acquire()
    if permit is None:
        state.attempts.append(
            Attempt(ep.name, "skipped", error="breaker_open", retry=retry, detail="breaker open")
        )
        emit(
            state.listeners,
            AttemptFinished(
                state.route,
                ep.name,
                ep.model,
                retry,
                "skipped",
                0.0,
                state.elapsed(),
                error="breaker_open",
                call_id=state.call_id,
            ),
        )
        raise Skipped(ep.name)
    return permit


def _failed(
    ep: Endpoint,
    state: CallState,
    permit: Permit,
    err: ProviderFailure,
    t0: float,
    retry: int,
    call: Call,
) -> AttemptFailed:
    failure = err.failure
    if failure.kind == "timeout" and state.remaining() <= 0.001:
        state.deadline_hit = True
    if failure.is_request_error:
        permit.release()
    else:
        permit.failure()
    latency = state.clock.monotonic() - t0
    state.attempts.append(
        Attempt(ep.name, "error", failure.kind, failure.status_code, latency, retry, failure.detail)
    )
    emit(
        state.listeners,
        AttemptFinished(
            state.route,
            ep.name,
            ep.model,
            retry,
            "error",
            latency,
            state.elapsed(),
            status_code=failure.status_code,
            error=failure.kind,
            detail=failure.detail,
            request_id=failure.request_id,
            timeout=call.read_timeout,
            call_id=state.call_id,
            provider=ep.provider_name,
        ),
    )
    failed = AttemptFailed(failure)
    failed.__cause__ = err.__cause__
    return failed


def _succeeded(
    ep: Endpoint, state: CallState, permit: Permit, result: Result, t0: float, retry: int
) -> Result:
    latency = state.clock.monotonic() - t0
    permit.success(latency)
    state.attempts.append(Attempt(ep.name, "ok", latency=latency, retry=retry))
    if state.listeners:  # the happy path builds no event nobody hears
        emit(
            state.listeners,
            AttemptFinished(
                state.route,
                ep.name,
                ep.model,
                retry,
                "ok",
                latency,
                state.elapsed(),
                request_id=result.request_id,
                call_id=state.call_id,
                provider=ep.provider_name,
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
            ),
        )
    return result


def _next_delay(
    ep: Endpoint, state: CallState, failure: Failure, tries: int, delay: float | None = None
) -> float | None:
    """The wait before another try at ``ep`` after ``tries`` tries, or None to stop there."""
    if delay is None:
        delay = retry_delay(ep.retry, failure, tries - 1, state.rand)
    if state.deadline_hit:
        return None
    if stop_reason(ep.retry, failure, tries, delay, state.remaining()) is not None:
        return None
    return delay


def _announce_retry(
    ep: Endpoint, state: CallState, failure: Failure, tries: int, delay: float
) -> None:
    reason = failure.kind if failure.retry_after is None else f"{failure.kind}, retry-after"
    emit(
        state.listeners,
        RetryScheduled(state.route, ep.name, tries, delay, reason, state.elapsed(), state.call_id),
    )


def _retrying_kwargs(ep: Endpoint, state: CallState, done: int) -> dict[str, Any]:
    """tenacity's settings for the tries after the first ``done`` ones; never its defaults.

    The stop rule is tenacity's ``stop_before_delay`` measured against the route's
    deadline on the injected clock, plus the attempt budget and ``max_retry_after``.
    """

    def failure_of(rs: tenacity.RetryCallState) -> Failure:
        exc = rs.outcome.exception() if rs.outcome is not None else None
        assert isinstance(exc, AttemptFailed)
        return exc.failure

    def wait(rs: tenacity.RetryCallState) -> float:
        return retry_delay(ep.retry, failure_of(rs), done + rs.attempt_number - 1, state.rand)

    def stop(rs: tenacity.RetryCallState) -> bool:
        tries = done + rs.attempt_number
        return _next_delay(ep, state, failure_of(rs), tries, rs.upcoming_sleep) is None

    def before_sleep(rs: tenacity.RetryCallState) -> None:
        _announce_retry(ep, state, failure_of(rs), done + rs.attempt_number, rs.upcoming_sleep)

    return {
        "retry": tenacity.retry_if_exception(
            lambda e: isinstance(e, AttemptFailed) and e.failure.retryable
        ),
        "wait": wait,
        "stop": stop,
        "before_sleep": before_sleep,
        "reraise": True,
    }


T = TypeVar("T")


def with_retries(ep: Endpoint, state: CallState, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` until it succeeds or the policy says stop; re-raise the last failure.

    The first try runs bare, so the happy path pays nothing for the retry machinery;
    a retryable failure hands the remaining tries to one ``tenacity.Retrying``.
    """
    try:
        return attempt()
    except AttemptFailed as exc:
        delay = _next_delay(ep, state, exc.failure, 1)
        if delay is None:
            raise
        _announce_retry(ep, state, exc.failure, 1, delay)
    state.clock.sleep(delay)
    return tenacity.Retrying(sleep=state.clock.sleep, **_retrying_kwargs(ep, state, 1))(attempt)


async def awith_retries(ep: Endpoint, state: CallState, attempt: Callable[[], Awaitable[T]]) -> T:
    """The async twin of :func:`with_retries`."""
    try:
        return await attempt()
    except AttemptFailed as exc:
        delay = _next_delay(ep, state, exc.failure, 1)
        if delay is None:
            raise
        _announce_retry(ep, state, exc.failure, 1, delay)
    await state.clock.asleep(delay)
    retrying = tenacity.AsyncRetrying(sleep=state.clock.asleep, **_retrying_kwargs(ep, state, 1))
    result: T = await retrying(attempt)
    return result


def call_sync(ep: Endpoint, state: CallState, messages: Any, params: Mapping[str, Any]) -> Result:
    """Call ``ep`` with retries; raise AttemptFailed or Skipped when it gives up."""
    retry_number = 0

    def attempt() -> Result:
        nonlocal retry_number
        retry = retry_number
        retry_number += 1
        permit = _acquire(ep, state, retry)
        call = _prepare(ep, state, messages, params, retry, permit)
        t0 = state.clock.monotonic()
        try:
            with _deadline.deadline_scope(state.remaining()):
                result = ep.provider.complete(call)
        except ProviderFailure as err:
            raise _failed(ep, state, permit, err, t0, retry, call) from err.__cause__
        except BaseException:
            permit.release()
            raise
        return _succeeded(ep, state, permit, result, t0, retry)

    return with_retries(ep, state, attempt)


async def call_async(
    ep: Endpoint, state: CallState, messages: Any, params: Mapping[str, Any]
) -> Result:
    """The async twin of :func:`call_sync`."""
    retry_number = 0

    async def attempt() -> Result:
        nonlocal retry_number
        retry = retry_number
        retry_number += 1
        permit = _acquire(ep, state, retry)
        call = _prepare(ep, state, messages, params, retry, permit)
        t0 = state.clock.monotonic()
        try:
            with _deadline.deadline_scope(state.remaining()):
                result = await ep.provider.acomplete(call)
        except ProviderFailure as err:
            raise _failed(ep, state, permit, err, t0, retry, call) from err.__cause__
        except BaseException:
            permit.release()
            raise
        return _succeeded(ep, state, permit, result, t0, retry)

    return await awith_retries(ep, state, attempt)
