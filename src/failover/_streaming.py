"""Streams through a route: failover before the first text, honesty after it.

A stream drives the same :class:`~failover._route_call.RouteCall` plan as ``complete``:
before the first text delta a failure is handled exactly as there (same retries,
breakers, deadline). After it the route's ``on_interrupt`` decides: ``raise`` ends the
stream with :class:`StreamInterrupted` (never a silent, truncated "answer"); ``continue``
resumes on the next endpoint that takes the partial answer as prefill; ``restart``
starts the answer again on the next endpoint. The deadline bounds the time to the first
delta; ``timeout.stream_idle`` then bounds each gap between deltas, so a stream that
keeps delivering may run past the deadline.

Iterating a stream yields its text; ``events()`` yields typed events instead (text,
thinking, tool calls, restarts, the finish). Any content counts as the first delta, for
failover and for the deadline. Both drivers (sync and async) only do the I/O; what the
caller sees of each item is decided in :class:`_Base`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _deadline
from ._response import Response
from ._steps import Acquire, Deliver, Lookup, Relay, Restart, Send, Sleep, Step
from ._stream_events import (
    Finished,
    Restarted,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from .providers._base import ProviderResult

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
        self._events = False  # events() rather than text
        self._shown = False  # content given to the caller since the answer (re)started
        self.response: Response | None = None
        """The final Response, set once the stream is exhausted."""

    def _begin(self, events: bool = False, aio: bool = False) -> RouteCall:
        if self._call is not None:
            raise RuntimeError("a failover stream can be iterated only once")
        call = self._router._call(
            self._route, self._messages, self._params, stream=True, restartable=events, aio=aio
        )
        self._call, self._plan, self._events = call, call.plan(), events
        return call

    def _given(self, item: Any) -> Any:
        """What the caller sees of one item or step: text, an event, or ``None``.

        Iterating shows text only. ``events()`` shows every content event, and a
        :class:`Restarted` when an answer it showed some of starts over, whether the
        plan restarts it after text or fails over before any (a tool call started, say).
        """
        assert self._call is not None
        if isinstance(item, str):
            text = self._call.shown(item)
            if not text:
                return None
            self._shown = True
            return TextDelta(text) if self._events else text
        if isinstance(item, (Send, Restart, Deliver)):
            shown, self._shown = self._shown, False
            if isinstance(item, Deliver):
                return self._given(item.text)
            if not (self._events and (shown or isinstance(item, Restart))):
                return None
            return Restarted(item.endpoint if isinstance(item, Restart) else item.endpoint.name)
        if self._events:
            self._shown = True
            return item
        return None

    def _ending(self) -> list[StreamEvent]:
        """The last events: a cached answer's tool calls, then :class:`Finished`."""
        response = self.response
        if not self._events or response is None:
            return []
        out: list[StreamEvent] = []
        if response.from_cache:  # a provider streamed its calls; the cache gives them here
            for index, call in enumerate(response.tool_calls):
                out.append(ToolCallStart(index, call.id, call.name))
                out.append(ToolCallDelta(index, json.dumps(call.arguments)))
        out.append(Finished(response.finish_reason, response))
        return out

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

    def events(self) -> Iterator[StreamEvent]:
        """Iterate typed events instead of text: ``for ev in s.events(): ...``.

        Yields :class:`TextDelta`, :class:`ThinkingDelta`, :class:`ToolCallStart`,
        :class:`ToolCallDelta`, :class:`Restarted` (clear what you showed) and, last,
        :class:`Finished` with the whole Response. A stream is iterated once, either way.
        """
        return self._run(self._begin(events=True))

    def close(self) -> None:
        """Stop early: close the provider stream and hand back its breaker permit."""
        items, self._items = self._items, None
        if items is not None:
            items.close()
        self._close_plan()

    def _run(self, call: RouteCall) -> Iterator[Any]:
        sleep = self._router._clock.sleep
        try:
            while (step := self._next_step()) is not None:
                try:
                    if isinstance(step, Relay):
                        self._outcome = yield from self._relay(step)
                    elif isinstance(step, Sleep):
                        sleep(step.seconds)
                    elif (given := self._given(step)) is not None:
                        yield given
                    if isinstance(step, Send):
                        self._outcome = self._open(step)
                except Exception as exc:  # given to the plan: it decides, and re-raises
                    self._error = exc
            yield from self._ending()
        finally:
            self.close()

    def _open(self, step: Send) -> tuple[Any, Any]:
        items = self._items = step.endpoint.provider.stream(step.request)
        token = _deadline.set_deadline(step.budget)
        try:
            return items, next(items)
        finally:
            _deadline.reset_deadline(token)

    def _relay(self, step: Relay) -> Generator[Any, None, Any]:
        item, items = step.first, step.items
        while not isinstance(item, ProviderResult):
            if (given := self._given(item)) is not None:
                yield given
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
        return self._run(self._begin(aio=True))

    def events(self) -> AsyncIterator[StreamEvent]:
        """Typed events instead of text: ``async for ev in s.events(): ...``."""
        return self._run(self._begin(events=True, aio=True))

    async def aclose(self) -> None:
        """Stop early: close the provider stream and hand back its breaker permit."""
        items, self._items = self._items, None
        if items is not None:
            await items.aclose()
        self._close_plan()

    async def _run(self, call: RouteCall) -> AsyncIterator[Any]:
        shared_step = self._router._shared_step
        try:
            while (step := self._next_step()) is not None:
                try:
                    if isinstance(step, Relay):
                        item, items = step.first, step.items
                        while not isinstance(item, ProviderResult):
                            if (given := self._given(item)) is not None:
                                yield given
                            token = _deadline.set_deadline(step.idle)
                            try:
                                item = await items.__anext__()
                            finally:
                                _deadline.reset_deadline(token)
                        self._items, self._outcome = None, item
                    elif isinstance(step, (Sleep, Acquire, Lookup)):
                        self._outcome = await shared_step(step)
                    elif (given := self._given(step)) is not None:
                        yield given
                    if isinstance(step, Send):
                        self._outcome = await self._open(step)
                except Exception as exc:  # given to the plan: it decides, and re-raises
                    self._error = exc
            for event in self._ending():
                yield event
        finally:
            await self.aclose()

    async def _open(self, step: Send) -> tuple[Any, Any]:
        items = self._items = step.endpoint.provider.astream(step.request)
        token = _deadline.set_deadline(step.budget)
        try:
            return items, await items.__anext__()
        finally:
            _deadline.reset_deadline(token)
