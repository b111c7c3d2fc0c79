"""What the router tells the world: small frozen events, and the listener protocol.

The router emits; listeners (logging, stats, OpenTelemetry, Prometheus, your own) turn
events into records. A listener is any callable taking one event. A listener that raises
is logged and otherwise ignored: observability never fails a call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AttemptFinished",
    "BreakerStateChanged",
    "CallFinished",
    "DeadlineReached",
    "Event",
    "FailedOver",
    "Listener",
    "RetryScheduled",
    "ServedFromCache",
    "emit",
]

_log = logging.getLogger("failover")


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    """One request to one endpoint ended (or was skipped: ``outcome == "skipped"``)."""

    route: str
    endpoint: str
    model: str
    retry: int
    outcome: str
    latency: float
    elapsed: float
    status_code: int | None = None
    error: str | None = None
    detail: str = ""
    request_id: str | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """The same endpoint will be tried again after ``delay`` seconds."""

    route: str
    endpoint: str
    retry: int
    delay: float
    reason: str
    elapsed: float


@dataclass(frozen=True, slots=True)
class FailedOver:
    """The route gave up on ``endpoint`` and moves on to ``next_endpoint`` (None: none left)."""

    route: str
    endpoint: str
    next_endpoint: str | None
    reason: str
    elapsed: float


@dataclass(frozen=True, slots=True)
class BreakerStateChanged:
    """An endpoint's breaker moved from ``old`` to ``new``."""

    endpoint: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeadlineReached:
    """The route's deadline ran out before an answer."""

    route: str
    deadline: float
    elapsed: float
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class ServedFromCache:
    """A cached answer (produced by ``endpoint``, ``age`` seconds old) was served."""

    route: str
    endpoint: str
    age: float
    elapsed: float
    attempts: int


@dataclass(frozen=True, slots=True)
class CallFinished:
    """A call ended: answered by ``endpoint`` (``outcome == "ok"``) or failed."""

    route: str
    endpoint: str | None
    outcome: str
    latency: float
    attempts: int
    from_cache: bool = False


Event = (
    AttemptFinished
    | RetryScheduled
    | FailedOver
    | BreakerStateChanged
    | DeadlineReached
    | ServedFromCache
    | CallFinished
)


class Listener(Protocol):
    """Anything called with each event."""

    def __call__(self, event: Event) -> None: ...


def emit(listeners: Sequence[Listener], event: Event) -> None:
    """Give ``event`` to every listener; a failing listener is logged, never raised."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            _log.exception("failover: listener %r failed on %s", listener, type(event).__name__)
