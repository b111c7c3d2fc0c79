"""The logging listener: events as stdlib log records on logger ``failover``.

INFO for what an on-call engineer must see (timeouts, failovers, breaker transitions,
deadlines, answers from the cache); DEBUG for every attempt. Request details go in
``extra`` fields (``failover_route``, ``failover_endpoint``...), never the prompt and
never a key.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from ._events import (
    AttemptFinished,
    BreakerStateChanged,
    CallFinished,
    CallStarted,
    DeadlineReached,
    Event,
    FailedOver,
    RetryScheduled,
    ServedFromCache,
)

__all__ = ["LoggingListener"]


# Calls in flight whose request size is remembered for their log lines; beyond this the
# oldest are forgotten (a call that never finishes must not grow memory).
_MAX_CALLS = 10_000


class LoggingListener:
    """Log each event to ``logger`` (default: the ``failover`` logger).

    Every record carries the event's fields as ``extra`` attributes named
    ``failover_<field>`` (``failover_route``, ``failover_endpoint``, ``failover_retry``,
    ``failover_elapsed``, ``failover_timeout``, ``failover_request_id``...), plus
    ``failover_request_chars``, the size of the call's messages.
    """

    __slots__ = ("_lock", "_logger", "_sizes")

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("failover")
        self._sizes: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, (CallStarted, CallFinished)):
            self._track(event)
            return
        self._log(event)

    def _track(self, event: CallStarted | CallFinished) -> None:
        with self._lock:
            if isinstance(event, CallStarted):
                self._sizes[event.call_id] = event.request_chars
                if len(self._sizes) > _MAX_CALLS:
                    self._sizes.popitem(last=False)
            else:
                self._sizes.pop(event.call_id, None)

    def _extra(self, event: Event) -> dict[str, object]:
        extra = {f"failover_{name}": getattr(event, name) for name in event.__slots__}
        call_id = getattr(event, "call_id", None)
        if call_id is not None:
            extra["failover_request_chars"] = self._sizes.get(call_id)
        return extra

    def _log(self, event: Event) -> None:
        log = self._logger
        _extra = self._extra
        if isinstance(event, AttemptFinished):
            timed_out = event.error == "timeout"
            level = logging.INFO if timed_out else logging.DEBUG
            if not log.isEnabledFor(level):
                return
            status = f" HTTP {event.status_code}" if event.status_code is not None else ""
            log.log(
                level,
                "%s %s try %d: %s%s in %.0f ms",
                event.route,
                event.endpoint,
                event.retry + 1,
                event.error or event.outcome,
                status,
                event.latency * 1000,
                extra=_extra(event),
            )
        elif isinstance(event, RetryScheduled):
            log.debug(
                "%s %s: retry %d in %.0f ms (%s)",
                event.route,
                event.endpoint,
                event.retry,
                event.delay * 1000,
                event.reason,
                extra=_extra(event),
            )
        elif isinstance(event, FailedOver):
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
        elif isinstance(event, ServedFromCache):
            log.info(
                "%s: served a cached answer from %s, %.0f s old, after %d failed attempt(s)",
                event.route,
                event.endpoint,
                event.age,
                event.attempts,
                extra=_extra(event),
            )
