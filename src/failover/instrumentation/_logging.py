"""The logging listener: events as stdlib log records on logger ``failover``.

INFO for what an on-call engineer must see (timeouts, failovers, breaker transitions,
deadlines, answers from the cache); DEBUG for every attempt. Request details go in
``extra`` fields (``failover_route``, ``failover_endpoint``...), never the prompt and
never a key.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from .._events import (
    AttemptFinished,
    BreakerStateChanged,
    DeadlineReached,
    Event,
    FailedOver,
    PanicTrial,
    RetryScheduled,
    ServedFromCache,
)

# Attempts that ended for want of time are logged at INFO (the others at DEBUG).
_TIMED_OUT = frozenset({"timeout", "first_token", "stream_idle", "deadline"})

__all__ = ["LoggingListener"]


class LoggingListener:
    """Log each event to ``logger`` (default: the ``failover`` logger).

    Every record carries the event's fields as ``extra`` attributes named
    ``failover_<field>`` (``failover_route``, ``failover_endpoint``, ``failover_retry``,
    ``failover_elapsed``, ``failover_timeout``, ``failover_request_id``,
    ``failover_request_chars`` (the size of the call's messages)...).
    """

    __slots__ = ("_logger", "wants_ok")

    # The events it logs: the router builds no other event for it.
    wants = frozenset(
        {
            AttemptFinished,
            RetryScheduled,
            FailedOver,
            BreakerStateChanged,
            DeadlineReached,
            ServedFromCache,
            PanicTrial,
        }
    )

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("failover")
        # wants_ok(): whether a successful attempt would be logged now (at DEBUG); the
        # router builds its event only then. The logger's own check, asked directly.
        self.wants_ok: Callable[[], bool] = functools.partial(
            self._logger.isEnabledFor, logging.DEBUG
        )

    @staticmethod
    def _extra(event: Event) -> dict[str, object]:
        return {f"failover_{name}": getattr(event, name) for name in event.__slots__}

    def __call__(self, event: Event) -> None:
        log = self._logger
        _extra = self._extra
        if isinstance(event, AttemptFinished):
            timed_out = event.error in _TIMED_OUT
            level = logging.INFO if timed_out else logging.DEBUG
            if not log.isEnabledFor(level):
                return
            status = f" HTTP {event.status_code}" if event.status_code is not None else ""
            meaning = ""
            if event.outcome == "error":  # each failure kind says what happened
                from .._failures import describe

                meaning = f" ({describe(event.error or 'unknown')})"
            log.log(
                level,
                "%s %s try %d: %s%s in %.0f ms%s",
                event.route,
                event.endpoint,
                event.retry + 1,
                event.error or event.outcome,
                status,
                event.latency * 1000,
                meaning,
                extra=_extra(event),
            )
            return
        # Everything below is rare (a failure, a transition); check the level once.
        if isinstance(event, RetryScheduled):
            if not log.isEnabledFor(logging.DEBUG):
                return
            log.debug(
                "%s %s: retry %d in %.0f ms (%s)",
                event.route,
                event.endpoint,
                event.retry,
                event.delay * 1000,
                event.reason,
                extra=_extra(event),
            )
            return
        if not log.isEnabledFor(logging.INFO):
            return
        if isinstance(event, FailedOver):
            log.info(
                "%s: failing over from %s to %s (%s)",
                event.route,
                event.endpoint,
                event.next_endpoint or "nothing",
                event.reason,
                extra=_extra(event),
            )
        elif isinstance(event, BreakerStateChanged):
            log.info(
                "breaker %s: %s -> %s (%s)",
                event.endpoint,
                event.old,
                event.new,
                event.reason,
                extra=_extra(event),
            )
        elif isinstance(event, DeadlineReached):
            log.info(
                "%s: deadline of %.3g s reached after %.3f s",
                event.route,
                event.deadline,
                event.elapsed,
                extra=_extra(event),
            )
        elif isinstance(event, PanicTrial):
            log.info(
                "%s: no endpoint answered and open breakers skipped some;"
                " one trial request goes to %s",
                event.route,
                event.endpoint,
                extra=_extra(event),
            )
        elif isinstance(event, ServedFromCache):
            log.info(
                "%s: served a cached answer from %s, %.0f s old, after %d failed attempt(s)",
                event.route,
                event.endpoint,
                event.age,
                event.attempts,
                extra=_extra(event),
            )
