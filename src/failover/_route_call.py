"""One call through a route: the single loop that every way of calling drives.

:meth:`RouteCall.plan` is a generator that walks the route's endpoints and yields what
it needs done, one step at a time (:mod:`failover._steps`): :class:`Send` a request,
:class:`Sleep` before a retry, :class:`Relay` a stream's deltas to the caller,
:class:`Deliver` a cached answer. The driver does the I/O and sends the outcome back in
(a provider's failure is thrown in). ``Router.complete`` and ``acomplete``, both stream
classes and ``failover simulate`` are such drivers, a dozen lines each, so what a failure
means, when to retry, when to fail over and when to give up is decided here alone (with
:func:`failover._retry.decide`); what the call records is :class:`CallRecord`'s part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ._call_record import CallRecord
from ._errors import StreamInterrupted
from ._events import PanicTrial, emit
from ._frozen import new_tuple
from ._response import Response
from ._retry import Decision, decide, retry_delay
from ._steps import Acquire, Deliver, Lookup, Relay, Restart, RouteEndpoint, Send, Sleep, Step
from .providers._base import ProviderFailure, ProviderRequest

if TYPE_CHECKING:
    from ._failures import Failure
    from .breaker._breaker import Permit

__all__ = ["RouteCall"]

# The share of its reset_timeout a breaker must have been open for a panic trial.
PANIC_AFTER = 0.1


class _GaveUp(NamedTuple):
    """An endpoint gave up: why, and whether the route stops (deadline) or fails over."""

    reason: str
    stop: bool
    cause: BaseException | None


class RouteCall(CallRecord):
    """One call through a route: :meth:`plan` decides, :class:`CallRecord` records."""

    def _share_end(self, index: int, ep: RouteEndpoint) -> tuple[float, bool]:
        """Until when ``ep`` may take the call, and whether other endpoints remain.

        While endpoints that may answer remain after this one, it gets an even share of
        the time left, never less than its connect timeout unless that would take more
        than half of what is left; the last endpoint gets all of it.
        """
        if index + 1 == len(self.endpoints):  # the last endpoint: everything left
            return self.deadline, False
        others = 0
        for later in self.endpoints[index + 1 :]:
            if later.breaker.state != "open":
                others += 1
        if not others:
            return self.deadline, False
        now = self.clock.monotonic()
        left = self.deadline - now
        share: float = max(left / (others + 1), min(ep.timeout.connect, left / 2))
        return min(now + share, self.deadline), True

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
                got = yield new_tuple(Send, (ep, request, budget))  # Send(...), made quicker
                if self.stream:
                    return (yield from self._relayed(index, ep, permit, got, t0, tries, request))
                return self._succeeded(ep, permit, got, t0, tries)
            except ProviderFailure as err:
                limits = (until, others, first_token, budget, panic is not None)
                after = self._failed_try(ep, permit, err, t0, tries, request, limits)
                if isinstance(after, _GaveUp):
                    return after
                tries += 1
                yield Sleep(after)
            except BaseException:
                permit.release()
                raise

    def _relayed(
        self,
        index: int,
        ep: RouteEndpoint,
        permit: Permit,
        opened: tuple[Any, Any],
        t0: float,
        tries: int,
        request: ProviderRequest,
    ) -> Generator[Step, Any, Response | _GaveUp | list[dict[str, Any]]]:
        """Relay an opened stream to its end; a break after text is :meth:`_broke`'s."""
        items, first = opened
        try:
            result = yield Relay(ep, items, first, ep.timeout.stream_idle)
        except ProviderFailure as err:
            if not self.parts:
                raise  # no text yet: an ordinary failure, retried as any other
            return (yield from self._broke(index, ep, permit, err, t0, tries, request))
        return self._succeeded(ep, permit, self._whole(result), t0, tries)

    def _failed_try(
        self,
        ep: RouteEndpoint,
        permit: Permit,
        err: ProviderFailure,
        t0: float,
        tries: int,
        request: ProviderRequest,
        limits: tuple[float, bool, float | None, float, bool],
    ) -> _GaveUp | float:
        """Record a failed try; raise for a rejected request, else why the endpoint gives
        up, or the wait before trying it again."""
        until, others, first_token, budget, panic = limits
        failure = self._relabel(err.failure, t0, first_token, budget)
        self._attempt_failed(ep, permit, failure, t0, tries, request)
        if failure.is_request_error:
            rejected = self._rejected(ep, failure, err)
            raise rejected from rejected.__cause__  # the cut's, after text
        decision = self._decide(ep, failure, tries + 1, until, others, panic)
        if decision.action == "stop":
            self.deadline_hit = True
            return _GaveUp("deadline reached", True, err.__cause__)
        if decision.action == "fail over":
            return _GaveUp(failure.kind, False, err.__cause__)
        self._retry_scheduled(ep, failure, tries + 1, decision.delay)
        return decision.delay

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

    def _cached(self, max_age: float) -> Generator[Step, Any, Response | None]:
        """The cached answer to this request, if at most ``max_age`` old."""
        assert self.cache is not None
        assert self._key is not None
        if self.aio and self.cache.is_async:
            found = yield Lookup(self._key, max_age)
        else:
            found = self.cache.lookup(self._key, max_age)
        return None if found is None else self._from_cache(found)

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


def _continuation(messages: Sequence[Mapping[str, Any]], partial: str) -> list[dict[str, Any]]:
    # Anthropic rejects a prefill that ends in white space; the continuation supplies it.
    return [*map(dict, messages), {"role": "assistant", "content": partial.rstrip()}]


def _ended_by(exc: BaseException) -> str:
    """How a call that did not answer ended, for its CallFinished event."""
    if isinstance(exc, GeneratorExit) or type(exc).__name__ == "CancelledError":
        return "cancelled"
    return type(exc).__name__
