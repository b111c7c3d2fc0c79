"""The Router: a policy's routes, each endpoint behind its breaker, called in order.

The Router builds everything at construction (SDK imports, clients, breakers, the cache),
so its first call is as fast as its hundredth. Each call is a
:class:`~failover._route_call.RouteCall`; the methods here only drive its plan: send
requests, sleep, and hand back what came of them.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._build import RouteBuilder, fallback_cache
from ._call_record import RouteShared
from ._clock import Clock, SystemClock
from ._deadline import reset_deadline, set_deadline
from ._events import Audience, BreakerStateChanged, CallStarted, Listener, emit
from ._response import Response
from ._route_call import RouteCall
from ._status import EndpointStatus, endpoint_statuses
from ._steps import Acquire, Lookup, Send, Sleep
from .instrumentation._logging import LoggingListener

if TYPE_CHECKING:
    from ._steps import RouteEndpoint
    from ._streaming import AsyncStream, Stream
    from .breaker._breaker import Breaker
    from .breaker._core import Transition
    from .policy._model import Policy
    from .providers import Provider

__all__ = ["EndpointStatus", "Router"]

# Call ids are unique across Routers, so one listener can serve several of them.
_CALL_IDS = itertools.count(1)


class Router:
    """Routes calls through a policy's endpoints with breakers, retries and a deadline.

    One Router is safe to share between threads and between event loops. Build it with
    :meth:`from_yaml` or :meth:`from_dict`. Construction imports the SDKs its endpoints
    need and builds their clients, so the first call pays no set-up.

    Args:
        policy: the validated policy.
        clock: where time comes from (tests and the simulator pass a virtual one).
        listeners: event listeners; default: those the policy's ``observability:`` section
            names, else one :class:`LoggingListener`.
        rand: a ``random.random``-like function for backoff jitter.
        namespace: the key prefix for shared state (Redis); derived from the policy's
            endpoints and routes when not given.
        providers: adapters to use instead of building them, by endpoint name (an
            in-process fake implementing :class:`failover.providers.Provider`).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        clock: Clock | None = None,
        listeners: Iterable[Listener] | None = None,
        rand: Callable[[], float] | None = None,
        namespace: str | None = None,
        providers: Mapping[str, Provider] | None = None,
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
        self._stats = stats
        # Calls count their attempts in it directly, building no event for it.
        self._hear = Audience(x for x in given if x is not stats)
        self._rand = rand if rand is not None else random.random
        self._cache = fallback_cache(policy, self._clock, self.namespace)
        builder = RouteBuilder(
            policy,
            clock=self._clock,
            stats=stats,
            namespace=self.namespace,
            on_transition=self._on_transition,
            providers=providers,
        )
        self._routes: dict[str, tuple[RouteEndpoint, ...]] = {
            name: builder.route(name) for name in policy.routes
        }
        self._breakers = builder.breakers
        self._providers = builder.providers
        # What each route's calls share, by the name a caller gives (None too, when the
        # policy has a default): a call looks it up once.
        self._resolved: dict[str | None, RouteShared] = {
            name: RouteCall.shared(
                route,
                self._routes[name],
                clock=self._clock,
                hear=self._hear,
                rand=self._rand,
                cache=self._cache,
                stats=self._stats,
            )
            for name, route in policy.routes.items()
        }
        if policy.default_route is not None or len(policy.routes) == 1:
            self._resolved[None] = self._resolved[policy.route(None).name]

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

    def _on_transition(self, name: str, transition: Transition) -> None:
        emit(
            self._hear.breaker_state_changed,
            BreakerStateChanged(name, transition.old, transition.new, transition.reason),
        )

    def _call(
        self,
        route: str | None,
        messages: Any,
        params: Mapping[str, Any],
        *,
        stream: bool = False,
        restartable: bool = False,
        aio: bool = False,
    ) -> RouteCall:
        """A new call of ``route``, its arguments checked and ``messages`` read once."""
        if type(messages) is not list or (route is not None and type(route) is not str):
            messages = _checked(messages, route)
        else:  # the common case, checked inline
            for message in messages:
                if type(message) is not dict:
                    messages = _checked(messages, route)
                    break
        shared = self._resolved.get(route)
        if shared is None:  # raises RouteNotFound with a did-you-mean
            shared = self._resolved[self.policy.route(route).name]
        call = RouteCall(
            shared,
            messages,
            params,
            next(_CALL_IDS),
            stream=stream,
            restartable=restartable,
            aio=aio,
        )
        if self._hear.call_started:
            emit(
                self._hear.call_started,
                CallStarted(call.route, call.call_id, call.request_chars, stream),
            )
        return call

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
            TypeError: ``messages`` or ``route`` is not of a type the router takes.
        """
        plan = self._call(route, messages, params).plan()
        outcome: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.send(outcome) if error is None else plan.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            outcome = error = None
            if isinstance(step, Send):
                token = set_deadline(step.budget)  # bounds every socket operation
                try:
                    outcome = step.endpoint.provider.complete(step.request)
                except BaseException as exc:  # given to the plan: it decides, and re-raises
                    error = exc
                finally:
                    reset_deadline(token)
            else:  # a plan that does not stream yields only Send and Sleep
                assert isinstance(step, Sleep)
                self._clock.sleep(step.seconds)

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        route: str | None = None,
        **params: Any,
    ) -> Response:
        """The async twin of :meth:`complete`: same arguments, result and errors."""
        plan = self._call(route, messages, params, aio=True).plan()
        outcome: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.send(outcome) if error is None else plan.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            outcome = error = None
            if isinstance(step, Send):
                token = set_deadline(step.budget)  # bounds every socket operation
                try:
                    outcome = await step.endpoint.provider.acomplete(step.request)
                except BaseException as exc:  # given to the plan: it decides, and re-raises
                    error = exc
                finally:
                    reset_deadline(token)
            else:  # a plan that does not stream yields no Relay
                outcome = await self._shared_step(step)

    async def _shared_step(self, step: Any) -> Any:
        """What an event loop awaits for a plan besides requests: a backoff sleep, a shared
        breaker's permit, a shared cache read (never a blocking socket call)."""
        if isinstance(step, Sleep):
            await self._clock.asleep(step.seconds)
            return None
        if isinstance(step, Acquire):
            return await step.endpoint.breaker.aacquire()
        assert isinstance(step, Lookup)
        assert self._cache is not None
        return await self._cache.alookup(step.key, step.max_age)

    def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        route: str | None = None,
        **params: Any,
    ) -> Stream:
        """Stream the answer: ``with router.stream(...) as s: for text in s: ...``.

        Before the first text delta, failures fail over as in :meth:`complete`. After it,
        the route's ``on_interrupt`` decides: raise :class:`StreamInterrupted`, continue on
        an endpoint that takes the partial answer as prefill, or restart the answer.
        ``s.response`` holds the final Response once the stream is exhausted. Nothing is
        sent until iteration starts.
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

    # --- status and lifecycle -------------------------------------------------------
    @property
    def namespace(self) -> str | None:
        """The prefix that keeps this policy's shared state (Redis breakers and cache)
        apart from other fleets': given to the constructor, else the policy's
        ``namespace:``, else ``None`` (the shared default). Keys do not depend on the rest of
        the policy, so processes running different versions of it share state."""
        return self._namespace if self._namespace is not None else self.policy.namespace

    def status(self) -> list[EndpointStatus]:
        """Each endpoint's breaker state, failure counts and recent latency."""
        return endpoint_statuses(self._breakers, self.policy, self._stats, self._clock)

    def breaker(self, endpoint: str) -> Breaker:
        """The breaker of ``endpoint`` (as its own routes use it), for inspection or tests."""
        for (name, _), breaker in self._breakers.items():
            if name == endpoint:
                return breaker
        raise KeyError(endpoint)

    def close(self) -> None:
        """Send what shared breakers batched, close every client's connections and the cache."""
        for breaker in self._breakers.values():
            breaker.flush()
        for provider in self._providers.values():
            provider.close()
        if self._cache is not None:
            self._cache.close()

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


def _checked(messages: Any, route: Any) -> Sequence[Mapping[str, Any]]:
    """``messages`` as a list read once (a generator is consumed here, not by the cache
    key), or a TypeError that names the argument."""
    if route is not None and not isinstance(route, str):
        raise TypeError(f"route must be a str or None, not {type(route).__name__}")
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise TypeError(
            "messages must be a list of messages such as"
            f" [{{'role': 'user', 'content': 'Hello'}}], not {type(messages).__name__}"
        )
    checked: Sequence[Any] = messages if isinstance(messages, (list, tuple)) else list(messages)
    for i, message in enumerate(checked):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise TypeError(
                f"messages[{i}] must be a mapping with 'role' and 'content',"
                f" not {type(message).__name__}"
            )
    return checked
