"""Calling one endpoint: breaker permit, deadline-bounded request, retries with tenacity.

The sync and async paths differ only in how they send and sleep; what an attempt counts
as, when to retry and what to record are the shared functions below. Imported on first
use (it imports tenacity and, through the breaker, pybreaker).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from . import _deadline
from ._call import AttemptFailed, CallState, Skipped
from ._events import AttemptFinished, AttemptStarted, RetryScheduled, emit
from ._failures import Failure
from ._response import Attempt
from ._retry import retry_delay, stop_reason
from .breaker._breaker import Breaker, Permit
from .policy._model import RetryPolicy, TimeoutPolicy
from .providers import Provider, ProviderFailure, ProviderRequest, ProviderResult

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


def _prepare(
    ep: Endpoint,
    state: CallState,
    messages: Any,
    params: Mapping[str, Any],
    retry: int,
    permit: Permit,
) -> ProviderRequest:
    remaining = state.remaining()
    merged = {**ep.params, **params} if ep.params else params
    call = ProviderRequest(
        messages=messages,
        params=merged,
        connect_timeout=min(ep.timeout.connect, remaining),
        read_timeout=min(ep.timeout.read, remaining),
        idle_timeout=ep.timeout.stream_idle,
    )
    if state.hear.attempt_started:
        emit(
            state.hear.attempt_started,
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
            state.hear.attempt_finished,
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
                request_chars=state.request_chars,
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
    call: ProviderRequest,
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
        state.hear.attempt_finished,
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
            request_chars=state.request_chars,
        ),
    )
    failed = AttemptFailed(failure)
    failed.__cause__ = err.__cause__
    return failed


def _succeeded(
    ep: Endpoint, state: CallState, permit: Permit, result: ProviderResult, t0: float, retry: int
) -> ProviderResult:
    latency = state.clock.monotonic() - t0
    permit.success(latency)
    state.attempts.append(Attempt(ep.name, "ok", latency=latency, retry=retry))
    if state.hear.attempt_finished:  # the happy path builds no event nobody hears
        emit(
            state.hear.attempt_finished,
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
                request_chars=state.request_chars,
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
        state.hear.retry_scheduled,
        RetryScheduled(
            state.route,
            ep.name,
            tries,
            delay,
            reason,
            state.elapsed(),
            state.call_id,
            state.request_chars,
        ),
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


def call_sync(
    ep: Endpoint, state: CallState, messages: Any, params: Mapping[str, Any]
) -> ProviderResult:
    """Call ``ep`` with retries; raise AttemptFailed or Skipped when it gives up."""
    retry_number = 0

    def attempt() -> ProviderResult:
        nonlocal retry_number
        retry = retry_number
        retry_number += 1
        permit = _acquire(ep, state, retry)
        call = _prepare(ep, state, messages, params, retry, permit)
        t0 = state.clock.monotonic()
        try:
            token = _deadline.set_deadline(state.remaining())
            try:
                result = ep.provider.complete(call)
            finally:
                _deadline.reset_deadline(token)
        except ProviderFailure as err:
            raise _failed(ep, state, permit, err, t0, retry, call) from err.__cause__
        except BaseException:
            permit.release()
            raise
        return _succeeded(ep, state, permit, result, t0, retry)

    return with_retries(ep, state, attempt)


async def call_async(
    ep: Endpoint, state: CallState, messages: Any, params: Mapping[str, Any]
) -> ProviderResult:
    """The async twin of :func:`call_sync`."""
    retry_number = 0

    async def attempt() -> ProviderResult:
        nonlocal retry_number
        retry = retry_number
        retry_number += 1
        permit = _acquire(ep, state, retry)
        call = _prepare(ep, state, messages, params, retry, permit)
        t0 = state.clock.monotonic()
        try:
            token = _deadline.set_deadline(state.remaining())
            try:
                result = await ep.provider.acomplete(call)
            finally:
                _deadline.reset_deadline(token)
        except ProviderFailure as err:
            raise _failed(ep, state, permit, err, t0, retry, call) from err.__cause__
        except BaseException:
            permit.release()
            raise
        return _succeeded(ep, state, permit, result, t0, retry)

    return await awith_retries(ep, state, attempt)
