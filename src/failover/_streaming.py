"""Streams through a route: failover before the first text, honesty after it.

A stream drives the same :class:`~failover._route_call.RouteCall` plan as ``complete``:
before the first text delta a failure is handled exactly as there (same retries,
breakers, deadline). After it the route's ``on_interrupt`` decides: ``raise`` ends the
stream with :class:`StreamInterrupted` (never a silent, truncated "answer"); ``continue``
resumes on the next endpoint that takes the partial answer as prefill; ``restart``
starts the answer again on the next endpoint. The deadline bounds the time to the first
delta; ``timeout.stream_idle`` then bounds each gap between deltas, so a stream that
keeps delivering may run past the deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _deadline
from ._response import Response
from ._route_call import Deliver, Relay, Send, Sleep, Step

if TYPE_CHECKING:
    from ._route_call import RouteCall
    from ._router import Router

__all__ = ["AsyncStream", "Stream"]


class _Base:
    """What the sync and async streams share: the plan and its bookkeeping, not I/O."""

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
        self._call: RouteCall | None = None
        self._plan: Generator[Step, Any, Response] | None = None
        self._items: Any = None
        self._outcome: Any = None
        self._error: BaseException | None = None
        self.response: Response | None = None
        """The final Response, set once the stream is exhausted."""

    def _begin(self) -> RouteCall:
        if self._call is not None:
            raise RuntimeError("a failover stream can be iterated only once")
        call = self._router._call(self._route, self._messages, self._params, stream=True)
        self._call, self._plan = call, call.plan()
        return call

    def _next_step(self) -> Step | None:
        """The plan's next step given the last outcome; None once it has answered."""
        assert self._plan is not None
        outcome, error = self._outcome, self._error
        self._outcome = self._error = None
        try:
            return self._plan.send(outcome) if error is None else self._plan.throw(error)
        except StopIteration as done:
            self.response = done.value
            return None

    def _close_plan(self) -> None:
        """Close the plan: a permit still held goes back to its breaker."""
        plan, self._plan = self._plan, None
        if plan is not None:
            plan.close()

    @property
    def text(self) -> str:
        """The text yielded so far."""
        return self._call.text if self._call is not None else ""


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
        return self._run(self._begin())

    def close(self) -> None:
        """Stop early: close the provider stream and hand back its breaker permit."""
        items, self._items = self._items, None
        if items is not None:
            items.close()
        self._close_plan()

    def _run(self, call: RouteCall) -> Iterator[str]:
        sleep = self._router._clock.sleep
        try:
            while (step := self._next_step()) is not None:
                try:
                    if isinstance(step, Relay):
                        self._outcome = yield from self._relay(step, call)
                    elif isinstance(step, Send):
                        self._outcome = self._open(step)
                    elif isinstance(step, Sleep):
                        sleep(step.seconds)
                    elif isinstance(step, Deliver):
                        yield step.text
                except Exception as exc:  # given to the plan: it decides, and re-raises
                    self._error = exc
        finally:
            self.close()

    def _open(self, step: Send) -> tuple[Any, Any]:
        items = self._items = step.endpoint.provider.stream(step.request)
        token = _deadline.set_deadline(step.budget)
        try:
            return items, next(items)
        finally:
            _deadline.reset_deadline(token)

    def _relay(self, step: Relay, call: RouteCall) -> Generator[str, None, Any]:
        item, items = step.first, step.items
        while isinstance(item, str):
            text = call.shown(item)
            if text:
                yield text
            token = _deadline.set_deadline(step.idle)
            try:
                item = next(items)
            finally:
                _deadline.reset_deadline(token)
        self._items = None
        return item


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
        return self._run(self._begin())

    async def aclose(self) -> None:
        """Stop early: close the provider stream and hand back its breaker permit."""
        items, self._items = self._items, None
        if items is not None:
            await items.aclose()
        self._close_plan()

    async def _run(self, call: RouteCall) -> AsyncIterator[str]:
        asleep = self._router._clock.asleep
        try:
            while (step := self._next_step()) is not None:
                try:
                    if isinstance(step, Relay):
                        item, items = step.first, step.items
                        while isinstance(item, str):
                            text = call.shown(item)
                            if text:
                                yield text
                            token = _deadline.set_deadline(step.idle)
                            try:
                                item = await items.__anext__()
                            finally:
                                _deadline.reset_deadline(token)
                        self._items, self._outcome = None, item
                    elif isinstance(step, Send):
                        self._outcome = await self._open(step)
                    elif isinstance(step, Sleep):
                        await asleep(step.seconds)
                    elif isinstance(step, Deliver):
                        yield step.text
                except Exception as exc:  # given to the plan: it decides, and re-raises
                    self._error = exc
        finally:
            await self.aclose()

    async def _open(self, step: Send) -> tuple[Any, Any]:
        items = self._items = step.endpoint.provider.astream(step.request)
        token = _deadline.set_deadline(step.budget)
        try:
            return items, await items.__anext__()
        finally:
            _deadline.reset_deadline(token)
