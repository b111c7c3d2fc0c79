"""Observability for failover: the router's events and the listeners that record them.

The router emits small frozen events (:class:`CallStarted`, :class:`AttemptFinished`,
:class:`FailedOver`...); a listener is any callable taking one. Give listeners to
``Router(policy, listeners=[...])``, or build them from a policy's ``observability:``
section with :func:`listeners_from_config`. Importing this package never imports
opentelemetry or prometheus_client: their listeners do, when built.
"""

from .._events import (
    AttemptFinished,
    AttemptStarted,
    BreakerStateChanged,
    CallFinished,
    CallStarted,
    DeadlineReached,
    Event,
    FailedOver,
    Listener,
    PanicTrial,
    RetryScheduled,
    ServedFromCache,
)
from ._config import listeners_from_config
from ._jsonl import JsonlTraceListener
from ._logging import LoggingListener
from ._otel import OpenTelemetryListener
from ._prometheus import PrometheusListener
from ._stats import EndpointStats, StatsListener

__all__ = [
    "AttemptFinished",
    "AttemptStarted",
    "BreakerStateChanged",
    "CallFinished",
    "CallStarted",
    "DeadlineReached",
    "EndpointStats",
    "Event",
    "FailedOver",
    "JsonlTraceListener",
    "Listener",
    "LoggingListener",
    "OpenTelemetryListener",
    "PanicTrial",
    "PrometheusListener",
    "RetryScheduled",
    "ServedFromCache",
    "StatsListener",
    "listeners_from_config",
]
