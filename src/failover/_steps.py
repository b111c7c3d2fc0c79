"""What a route's plan asks its driver to do: the steps, and the endpoints they name.

Kept apart from the plan (:mod:`failover._route_call`) so that drivers and the simulator
import the vocabulary without the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ._retry import RetryBudget
from .providers._base import ProviderRequest

if TYPE_CHECKING:
    from .breaker._breaker import Breaker
    from .providers import Provider

__all__ = [
    "Acquire",
    "Deliver",
    "Lookup",
    "Relay",
    "Restart",
    "RouteEndpoint",
    "Send",
    "Sleep",
    "Step",
]


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
