"""Streams through a route: failover before the first text, honesty after it.

Before the first text delta a failure is handled exactly as in ``complete`` (same
retries, breakers and deadline). After it, the route's ``on_interrupt`` decides: ``raise``
ends the stream with :class:`StreamInterrupted` (never a silent, truncated "answer");
``continue`` resumes on the next endpoint with the partial answer as assistant prefill.
The deadline bounds the time to the first delta; ``timeout.stream_idle`` then bounds each
gap between deltas, so a stream that keeps delivering may run past the deadline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _deadline
from ._attempts import (
    AttemptFailed,
    CallState,
    Endpoint,
    Skipped,
    _acquire,
    _failed,
    _prepare,
    _succeeded,
    awith_retries,
    with_retries,
)
from ._errors import StreamInterrupted
from ._events import FailedOver, emit
from ._response import Response
from .breaker._breaker import Permit
from .providers import ProviderFailure, ProviderResult

if TYPE_CHECKING:
    from ._router import Router

__all__ = ["AsyncStream", "Stream"]


class _Opened:
    """A provider stream that produced its first item, with its permit still held."""

    __slots__ = ("call", "first", "items", "permit", "retry", "t0")

    def __init__(
        self,
        items: Any,
        first: str | ProviderResult,
        permit: Permit,
        t0: float,
        retry: int,
        call: Any,
    ) -> None:
        self.items = items
        self.first = first
        self.permit = permit
        self.t0 = t0
        self.retry = retry
        self.call = call


def _before_first_delta(err: ProviderFailure) -> ProviderFailure:
    """A stream cut before any text is a connection failure, retried as in ``complete``."""
    if err.failure.kind != "stream_cut":
        return err
    again = ProviderFailure(dataclasses.replace(err.failure, kind="connect"))
    again.__cause__ = err.__cause__
    return again


def _ended_by(exc: BaseException) -> str:
    """How a stream that did not finish ended, for its CallFinished event."""
    if isinstance(exc, GeneratorExit) or type(exc).__name__ == "CancelledError":
        return "cancelled"
    return type(exc).__name__


def _continuation(messages: Sequence[Mapping[str, Any]], partial: str) -> list[dict[str, Any]]:
    # Anthropic rejects a prefill that ends in white space; the continuation supplies it.
    return [*map(dict, messages), {"role": "assistant", "content": partial.rstrip()}]


class _Base:
    """What the sync and async streams share: bookkeeping, not I/O."""

    def __init__(
        self,
        router: Router,
        messages: Sequence[Mapping[str, Any]],
        route: str | None,
        params: Mapping[str, Any],
    ) -> None:
        self._router = router
        self._messages = messages
        self._route = route
        self._params = params
        self._parts: list[str] = []
        self._opened: _Opened | None = None
        self._seam = False
        self._started = False
        self.response: Response | None = None
        """The final Response, set once the stream is exhausted."""

    def _begin(self) -> None:
        if self._started:
            raise RuntimeError("a failover stream can be iterated only once")
        self._started = True

    def _shown(self, delta: str) -> str:
        """The delta as the caller sees it: no doubled white space where a continuation
        joins the partial answer (its prefill had trailing white space stripped)."""
        if self._seam:
            self._seam = False
            if self._parts and self._parts[-1][-1:].isspace():
                return delta.lstrip()
        return delta

    @property
    def text(self) -> str:
        """The text yielded so far."""
        return "".join(self._parts)

    def _interrupted(
        self,
        state: CallState,
        ep: Endpoint,
        err: ProviderFailure,
        opened: _Opened,
        on_interrupt: str,
        following: str | None,
    ) -> bool:
        """Record a break after text; True to continue elsewhere, else raise."""
        failed = _failed(ep, state, opened.permit, err, opened.t0, opened.retry, opened.call)
        self._opened = None
        if on_interrupt == "continue" and following is not None and state.remaining() > 0:
            emit(
                state.hear.failed_over,
                FailedOver(
                    state.route,
                    ep.name,
                    following,
                    f"{failed.failure.kind} after text; continuing",
                    state.elapsed(),
                    state.call_id,
                    state.request_chars,
                ),
            )
            self._seam = True
            return True
        raise StreamInterrupted(
            f"stream from {ep.name} broke after {len(self.text)} characters"
            f" ({failed.failure.kind}); the partial text is not a complete answer",
            partial_text=self.text,
            attempts=state.attempts,
        ) from err.__cause__

    def _continuation_rejected(self, state: CallState, ep: Endpoint, exc: BaseException) -> None:
        """After text, an endpoint that rejects the continuation (HTTP 400, 413, 422: say, a
        prefill it does not support) ends the stream as interrupted, partial text kept;
        a bare RequestError would drop the text already yielded."""
        if not (self._parts and isinstance(exc, AttemptFailed) and exc.failure.is_request_error):
            return
        failure = exc.failure
        raise StreamInterrupted(
            f"stream broke after {len(self.text)} characters and {ep.name} rejected the"
            f" continuation (HTTP {failure.status_code}): {failure.detail}; the partial text"
            " is not a complete answer",
            partial_text=self.text,
            attempts=state.attempts,
        ) from exc.__cause__

    def _no_partial_answer(self, state: CallState, last: BaseException | None) -> None:
        """After text was yielded, neither the cache nor a plain error may stand in."""
        if self._parts:
            raise StreamInterrupted(
                f"stream broke after {len(self.text)} characters and no endpoint could"
                " continue it; the partial text is not a complete answer",
                partial_text=self.text,
                attempts=state.attempts,
            ) from (None if last is None else last.__cause__)

    def _finish(
        self,
        state: CallState,
        ep: Endpoint,
        opened: _Opened,
        result: ProviderResult,
        key: str | None,
    ) -> None:
        self._opened = None
        _succeeded(ep, state, opened.permit, result, opened.t0, opened.retry)
        whole = ProviderResult(
            self.text, result.model, result.usage, result.stop_reason, result.request_id, result.raw
        )
        self.response = self._router._respond(state, ep, whole)
        self._router._cache_store(state.route, key, self.response)


class Stream(_Base):
    """A sync stream: iterate for text deltas; ``response`` holds the final Response."""

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        self._begin()
        return self._run()

    def close(self) -> None:
        """Stop early: close the provider stream and hand back its breaker permit."""
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.permit.release()
            opened.items.close()

    def _open(self, ep: Endpoint, state: CallState, messages: Any) -> _Opened:
        retry_number = 0

        def attempt() -> _Opened:
            nonlocal retry_number
            retry = retry_number
            retry_number += 1
            permit = _acquire(ep, state, retry)
            call = _prepare(ep, state, messages, self._params, retry, permit)
            t0 = state.clock.monotonic()
            items = ep.provider.stream(call)
            try:
                with _deadline.deadline_scope(state.remaining()):
                    first = next(items)
            except ProviderFailure as err:
                err = _before_first_delta(err)
                raise _failed(ep, state, permit, err, t0, retry, call) from err.__cause__
            except BaseException:
                permit.release()
                raise
            return _Opened(items, first, permit, t0, retry, call)

        return with_retries(ep, state, attempt)

    def _run(self) -> Iterator[str]:
        route, endpoints, state = self._router._start(self._route, self._messages, stream=True)
        try:
            yield from self._steps(route, endpoints, state)
        except BaseException as exc:  # interrupted, closed early, cancelled: still announced
            self._router._call_finished(state, None, "error", error=_ended_by(exc))
            raise

    def _steps(self, route: str, endpoints: Sequence[Endpoint], state: CallState) -> Iterator[str]:
        router = self._router
        on_interrupt = router.policy.routes[route].on_interrupt
        key, cached = router._cache_fresh(route, self._messages, self._params, state)
        if cached is not None:
            self.response = cached
            yield cached.text
            return
        messages: Sequence[Mapping[str, Any]] = self._messages
        last: BaseException | None = None
        try:
            for index, ep in enumerate(endpoints):
                try:
                    opened = self._opened = self._open(ep, state, messages)
                except (AttemptFailed, Skipped) as exc:
                    last = exc
                    self._continuation_rejected(state, ep, exc)
                    if router._stop_or_failover(state, endpoints, index, exc):
                        break
                    continue
                item: str | ProviderResult = opened.first
                try:
                    while isinstance(item, str):
                        text = self._shown(item)
                        if text:
                            self._parts.append(text)
                            yield text
                        token = _deadline.set_deadline(ep.timeout.stream_idle)
                        try:
                            item = next(opened.items)
                        finally:
                            _deadline.reset_deadline(token)
                except ProviderFailure as err:
                    last = err
                    following = endpoints[index + 1].name if index + 1 < len(endpoints) else None
                    if self._interrupted(state, ep, err, opened, on_interrupt, following):
                        messages = _continuation(self._messages, self.text)
                        continue
                assert isinstance(item, ProviderResult)  # the loop ends on the final result
                self._finish(state, ep, opened, item, key)
                return
        finally:
            self.close()
        self._no_partial_answer(state, last)
        fallback = router._cache_fallback(state, key, last)
        self.response = fallback
        yield fallback.text


class AsyncStream(_Base):
    """The async twin of :class:`Stream`."""

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[str]:
        self._begin()
        return self._run()

    async def aclose(self) -> None:
        """Stop early: close the provider stream and hand back its breaker permit."""
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.permit.release()
            await opened.items.aclose()

    async def _open(self, ep: Endpoint, state: CallState, messages: Any) -> _Opened:
        retry_number = 0

        async def attempt() -> _Opened:
            nonlocal retry_number
            retry = retry_number
            retry_number += 1
            permit = _acquire(ep, state, retry)
            call = _prepare(ep, state, messages, self._params, retry, permit)
            t0 = state.clock.monotonic()
            items = ep.provider.astream(call)
            try:
                with _deadline.deadline_scope(state.remaining()):
                    first = await items.__anext__()
            except ProviderFailure as err:
                err = _before_first_delta(err)
                raise _failed(ep, state, permit, err, t0, retry, call) from err.__cause__
            except BaseException:
                permit.release()
                raise
            return _Opened(items, first, permit, t0, retry, call)

        return await awith_retries(ep, state, attempt)

    async def _run(self) -> AsyncIterator[str]:
        route, endpoints, state = self._router._start(self._route, self._messages, stream=True)
        steps = self._steps(route, endpoints, state)
        try:
            async for text in steps:
                yield text
        except BaseException as exc:  # interrupted, closed early, cancelled: still announced
            self._router._call_finished(state, None, "error", error=_ended_by(exc))
            raise
        finally:
            await steps.aclose()  # an async generator is not closed by its consumer's exit

    async def _steps(
        self, route: str, endpoints: Sequence[Endpoint], state: CallState
    ) -> AsyncGenerator[str, None]:
        router = self._router
        on_interrupt = router.policy.routes[route].on_interrupt
        key, cached = router._cache_fresh(route, self._messages, self._params, state)
        if cached is not None:
            self.response = cached
            yield cached.text
            return
        messages: Sequence[Mapping[str, Any]] = self._messages
        last: BaseException | None = None
        try:
            for index, ep in enumerate(endpoints):
                try:
                    opened = self._opened = await self._open(ep, state, messages)
                except (AttemptFailed, Skipped) as exc:
                    last = exc
                    self._continuation_rejected(state, ep, exc)
                    if router._stop_or_failover(state, endpoints, index, exc):
                        break
                    continue
                item: str | ProviderResult = opened.first
                try:
                    while isinstance(item, str):
                        text = self._shown(item)
                        if text:
                            self._parts.append(text)
                            yield text
                        token = _deadline.set_deadline(ep.timeout.stream_idle)
                        try:
                            item = await opened.items.__anext__()
                        finally:
                            _deadline.reset_deadline(token)
                except ProviderFailure as err:
                    last = err
                    following = endpoints[index + 1].name if index + 1 < len(endpoints) else None
                    if self._interrupted(state, ep, err, opened, on_interrupt, following):
                        messages = _continuation(self._messages, self.text)
                        continue
                assert isinstance(item, ProviderResult)  # the loop ends on the final result
                self._finish(state, ep, opened, item, key)
                return
        finally:
            await self.aclose()
        self._no_partial_answer(state, last)
        fallback = router._cache_fallback(state, key, last)
        self.response = fallback
        yield fallback.text
