"""What the router tells the world: small frozen events, and the listener protocol.

The router emits; listeners (logging, stats, OpenTelemetry, Prometheus, your own) turn
events into records. A listener is any callable taking one event. A listener that raises
is logged and otherwise ignored: observability never fails a call.

A listener may declare ``wants``, the event classes it handles; the router then never
builds an event that no listener wants, so the happy path costs less. A listener without
``wants`` hears everything.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AttemptFinished",
    "AttemptStarted",
    "Audience",
    "BreakerStateChanged",
    "CallFinished",
    "CallStarted",
    "DeadlineReached",
    "Event",
    "FailedOver",
    "Listener",
    "PanicTrial",
    "RetryScheduled",
    "ServedFromCache",
    "emit",
]

_log = logging.getLogger("failover")


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call entered the router.

    ``call_id`` ties together every event of one call; ``request_chars`` is the size of
    the messages' text (never the text itself).
    """

    route: str
    call_id: int
    request_chars: int
    stream: bool = False


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """A request to ``endpoint`` is about to go out (its breaker admitted it)."""

    route: str
    endpoint: str
    model: str
    retry: int
    call_id: int
    timeout: float
    elapsed: float
    provider: str = ""
    trial: bool = False


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    """One request to one endpoint ended (or was skipped: ``outcome == "skipped"``).

    ``timeout`` is the read timeout that applied (already bounded by the deadline);
    ``input_tokens``/``output_tokens`` are set on success when the provider reported them.
    """

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
    call_id: int = 0
    provider: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    request_chars: int | None = None


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """The same endpoint will be tried again after ``delay`` seconds."""

    route: str
    endpoint: str
    retry: int
    delay: float
    reason: str
    elapsed: float
    call_id: int = 0
    request_chars: int | None = None


@dataclass(frozen=True, slots=True)
class FailedOver:
    """The route gave up on ``endpoint`` and moves on to ``next_endpoint`` (None: none left)."""

    route: str
    endpoint: str
    next_endpoint: str | None
    reason: str
    elapsed: float
    call_id: int = 0
    request_chars: int | None = None


@dataclass(frozen=True, slots=True)
class BreakerStateChanged:
    """An endpoint's breaker moved from ``old`` to ``new``."""

    endpoint: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class PanicTrial:
    """No endpoint of ``route`` answered, open breakers skipped some, and no cached answer
    was at hand, so one trial request goes to ``endpoint`` (the skipped one whose breaker
    opened longest ago) rather than failing the call untried there."""

    route: str
    endpoint: str
    call_id: int = 0


@dataclass(frozen=True, slots=True)
class DeadlineReached:
    """The route's deadline ran out before an answer."""

    route: str
    deadline: float
    elapsed: float
    endpoint: str | None = None
    call_id: int = 0
    request_chars: int | None = None


@dataclass(frozen=True, slots=True)
class ServedFromCache:
    """A cached answer (produced by ``endpoint``, ``age`` seconds old) was served."""

    route: str
    endpoint: str
    age: float
    elapsed: float
    attempts: int
    call_id: int = 0
    request_chars: int | None = None


@dataclass(frozen=True, slots=True)
class CallFinished:
    """A call ended: answered by ``endpoint`` (``outcome == "ok"``) or failed.

    ``error`` names the exception raised when it failed (``AllEndpointsFailed``...).
    """

    route: str
    endpoint: str | None
    outcome: str
    latency: float
    attempts: int
    from_cache: bool = False
    call_id: int = 0
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None


Event = (
    CallStarted
    | AttemptStarted
    | AttemptFinished
    | RetryScheduled
    | FailedOver
    | BreakerStateChanged
    | PanicTrial
    | DeadlineReached
    | ServedFromCache
    | CallFinished
)


class Listener(Protocol):
    """Anything called with each event (optionally with a ``wants`` attribute)."""

    def __call__(self, event: Event) -> None: ...


def _wants(listener: Listener, kind: type) -> bool:
    wants = getattr(listener, "wants", None)
    return wants is None or kind in wants


class Audience:
    """Who hears each kind of event, worked out once per Router.

    Each attribute is the tuple of listeners for one event class; an empty tuple means
    nobody wants that event and the caller need not build it.
    """

    __slots__ = (
        "all",
        "attempt_finished",
        "attempt_started",
        "breaker_state_changed",
        "call_finished",
        "call_started",
        "deadline_reached",
        "failed_over",
        "ok_gate",
        "panic_trial",
        "retry_scheduled",
        "served_from_cache",
    )

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self.all: tuple[Listener, ...] = tuple(listeners)

        def hearing(kind: type) -> tuple[Listener, ...]:
            return tuple(x for x in self.all if _wants(x, kind))

        self.call_started = hearing(CallStarted)
        self.attempt_started = hearing(AttemptStarted)
        self.attempt_finished = hearing(AttemptFinished)
        # Whether a successful attempt's event would be heard now: None when nobody
        # hears it, else a callable asked per call. A listener may say per call whether
        # it would use it (``wants_ok()``: the logging listener only at DEBUG); one
        # without ``wants_ok`` always does.
        gates: tuple[Callable[[], bool] | None, ...] = tuple(
            getattr(x, "wants_ok", None) for x in self.attempt_finished
        )
        self.ok_gate: Callable[[], bool] | None = None
        if None in gates:
            self.ok_gate = _always
        elif len(gates) == 1:
            self.ok_gate = gates[0]
        elif gates:
            self.ok_gate = functools.partial(_any_of, gates)
        self.retry_scheduled = hearing(RetryScheduled)
        self.failed_over = hearing(FailedOver)
        self.breaker_state_changed = hearing(BreakerStateChanged)
        self.deadline_reached = hearing(DeadlineReached)
        self.panic_trial = hearing(PanicTrial)
        self.served_from_cache = hearing(ServedFromCache)
        self.call_finished = hearing(CallFinished)

    def __repr__(self) -> str:
        return f"Audience({list(self.all)!r})"


def _always() -> bool:
    return True


def _any_of(gates: tuple[Callable[[], bool] | None, ...]) -> bool:
    return any(gate() for gate in gates if gate is not None)


def emit(listeners: Sequence[Listener], event: Event) -> None:
    """Give ``event`` to every listener; a failing listener is logged, never raised."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            _log.exception("failover: listener %r failed on %s", listener, type(event).__name__)
