"""What a Router is built of: each route's endpoints with their breakers, retry budgets and
adapters, and the fallback cache. All of it is built once, when the Router is made."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import Clock
    from ._retry import RetryBudget
    from ._steps import RouteEndpoint
    from .breaker._breaker import Breaker, BreakerStore
    from .breaker._core import Transition
    from .cache._fallback import FallbackCache
    from .instrumentation._stats import StatsListener
    from .policy._model import EndpointPolicy, Policy
    from .providers import Provider

__all__ = ["RouteBuilder", "fallback_cache"]


class RouteBuilder:
    """Builds a policy's routes, sharing what routes share.

    Routes that leave an endpoint's breaker settings alone share its breaker (and its
    retry budget, which counts the endpoint's calls); every route shares its adapter.
    Each adapter is prepared as it is made (SDK imports and clients, now).

    Args:
        policy: the validated policy.
        clock: the Router's clock, for the breakers.
        stats: the Router's stats listener; it follows every breaker.
        namespace: the prefix of shared (Redis) breaker keys.
        on_transition: called with a breaker's name and each transition it makes.
        providers: adapters given to the Router, by endpoint name (not prepared).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        clock: Clock,
        stats: StatsListener,
        namespace: str | None,
        on_transition: Callable[[str, Transition], None],
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._stats = stats
        self._namespace = namespace
        self._on_transition = on_transition
        self.breakers: dict[tuple[str, Any], Breaker] = {}
        self._budgets: dict[tuple[str, Any], RetryBudget | None] = {}
        self.providers: dict[str, Provider] = dict(providers or {})

    def route(self, route: str) -> tuple[RouteEndpoint, ...]:
        """The endpoints of ``route``, in order, each with its breaker and adapter."""
        from ._retry import RetryBudget
        from ._steps import RouteEndpoint
        from .providers._base import accepts_prefill

        built = []
        for name in self._policy.routes[route].endpoints:
            ep = self._policy.endpoints[name]
            timeout, retry, breaker_policy = self._policy.effective(route, name)
            key = (name, breaker_policy)
            breaker = self.breakers.get(key)
            if breaker is None:
                label = name if breaker_policy == ep.breaker else f"{name}@{route}"
                breaker = self.breakers[key] = self._breaker(name, ep, label, breaker_policy)
                self._budgets[key] = RetryBudget.of(retry)
            built.append(
                RouteEndpoint(
                    name=name,
                    provider_name=ep.provider,
                    model=ep.model,
                    params=ep.params,
                    timeout=timeout,
                    retry=retry,
                    breaker=breaker,
                    provider=self._provider(name, ep),
                    budget=self._budgets[key],
                    prefill=accepts_prefill(ep),
                    first_token=getattr(timeout, "first_token", None),
                )
            )
        return tuple(built)

    def _breaker(self, name: str, ep: EndpointPolicy, label: str, policy: Any) -> Breaker:
        from .breaker._breaker import Breaker

        breaker = Breaker(
            label,
            policy,
            self._clock,
            store=self._state_store(ep, label, policy),
            on_transition=self._on_transition,
            # A healthy endpoint's successes reach the stats in batches.
            on_successes=functools.partial(self._stats.successes, name),
        )
        self._stats.follow(breaker)
        return breaker

    def _provider(self, name: str, ep: EndpointPolicy) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            from .providers import make_provider

            provider = self.providers[name] = make_provider(ep)
            prepare = getattr(provider, "prepare", None)
            if prepare is not None:  # readiness: clients and lazy imports, now
                prepare()
        return provider

    def _state_store(self, ep: EndpointPolicy, label: str, policy: Any) -> BreakerStore | None:
        """The shared store for one breaker when the policy keeps state in Redis.

        Its key is the endpoint's identity (provider, model, base URL, breaker rules) under
        the namespace, so processes running other versions of the policy share it.
        """
        if self._policy.state.kind != "redis":
            return None  # the breaker makes its own process-local store
        from .breaker._keys import breaker_key, settings_fingerprint
        from .breaker._redis import RedisBreakerStore

        url = self._policy.state.url
        assert url is not None
        key = breaker_key(
            self._namespace, ep.provider, ep.model, ep.base_url, settings_fingerprint(policy)
        )
        return RedisBreakerStore(url, None, label, policy, self._clock, key=key)


def fallback_cache(policy: Policy, clock: Clock, namespace: str | None) -> FallbackCache | None:
    """The fallback cache, when some route uses one; it ages entries by ``clock``'s wall time."""
    if not any(route.cache is not None for route in policy.routes.values()):
        return None
    from .cache._fallback import FallbackCache

    c = policy.cache
    clock_time = getattr(clock, "time", None)
    return FallbackCache(
        c.kind,
        c.path if c.kind == "sqlite" else c.url,
        c.max_entries,
        namespace,
        now=clock_time if callable(clock_time) else time.time,
    )
