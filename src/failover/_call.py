"""One call's running state and the two signals an endpoint gives up with.

Kept apart from ``_attempts`` (which imports tenacity and pybreaker on first use) so
that the router can import these at module level and its hot path runs no import.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._clock import Clock
from ._events import Audience
from ._response import Attempt

if TYPE_CHECKING:  # _failures imports email.utils: keep it out of `import failover`
    from ._failures import Failure

__all__ = ["AttemptFailed", "CallState", "Skipped"]


class AttemptFailed(Exception):
    """An attempt failed; raised ``from`` the provider's own exception."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail or failure.kind)
        self.failure = failure


class Skipped(Exception):
    """The endpoint's breaker turned the call away: no request was made."""


@dataclass(slots=True)
class CallState:
    """Everything one call accumulates as it moves through a route.

    ``hear`` says which listeners want each kind of event; ``request_chars`` is the size
    of the messages' text, carried on the events that get logged.
    """

    route: str
    clock: Clock
    start: float
    deadline: float
    hear: Audience
    rand: Callable[[], float] = random.random
    attempts: list[Attempt] = field(default_factory=list)
    deadline_hit: bool = False
    call_id: int = 0
    finished: bool = False
    request_chars: int = 0

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.start

    def remaining(self) -> float:
        return self.deadline - self.clock.monotonic()
