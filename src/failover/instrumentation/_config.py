"""Listeners from a policy's ``observability:`` section (as plain data)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._events import Listener
from ..policy._durations import parse_duration
from ._jsonl import JsonlTraceListener
from ._logging import LoggingListener
from ._otel import OpenTelemetryListener
from ._prometheus import PrometheusListener
from ._stats import StatsListener

__all__ = ["config_problems", "listeners_from_config"]

_KEYS = ("logging", "otel", "prometheus", "stats", "trace")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def listeners_from_config(config: Mapping[str, Any]) -> list[Listener]:
    """Build the listeners an ``observability:`` section asks for.

    Example::

        listeners_from_config({
            "logging": {"level": "info"},   # or true (the default) / false
            "otel": True,                   # OpenTelemetryListener()
            "prometheus": {"namespace": "llm"},  # or true / false
            "stats": {"window": "5m", "max_samples": 1024},  # or true / false
            "trace": "failover-{pid}.jsonl",  # JsonlTraceListener(path)
        })

    Logging is on unless ``logging: false``; everything else is off unless asked for.
    ``logging.level`` sets the level of the ``failover`` logger (the application's
    handlers still decide where records go). The listeners come in the order logging,
    stats, prometheus, otel, trace.

    Args:
        config: the section as plain data (what YAML loads).

    Returns:
        The listeners, ready for ``Router(..., listeners=...)``.

    Raises:
        ValueError: an unknown key or a value of the wrong kind; the message names the
            key path (``observability.prometheus.namespace``...).
    """
    if isinstance(config, Mapping):  # in code, None switches a listener off as false does
        config = {key: False if value is None else value for key, value in config.items()}
    problems = config_problems(config)
    if problems:
        path, message = problems[0]
        raise ValueError(f"{'.'.join(('observability', *path))}: {message}")
    listeners: list[Listener] = []
    logging_config = config.get("logging", True)
    if logging_config is not False and logging_config is not None:
        level = logging_config.get("level") if isinstance(logging_config, Mapping) else None
        if level is not None:
            logging.getLogger("failover").setLevel(_LEVELS[level.lower()])
        listeners.append(LoggingListener())
    stats = config.get("stats", False)
    if isinstance(stats, Mapping):
        kwargs: dict[str, Any] = {}
        if "window" in stats:
            kwargs["window"] = parse_duration(stats["window"])
        if "max_samples" in stats:
            kwargs["max_samples"] = stats["max_samples"]
        listeners.append(StatsListener(**kwargs))
    elif stats is True:
        listeners.append(StatsListener())
    prometheus = config.get("prometheus", False)
    if isinstance(prometheus, Mapping):
        listeners.append(PrometheusListener(namespace=prometheus.get("namespace", "failover")))
    elif prometheus is True:
        listeners.append(PrometheusListener())
    if config.get("otel", False) is True:
        listeners.append(OpenTelemetryListener())
    trace = config.get("trace")
    if isinstance(trace, str):
        listeners.append(JsonlTraceListener(trace))
    return listeners


Problem = tuple[tuple[str, ...], str]


def config_problems(config: object) -> list[Problem]:
    """Every problem of an ``observability:`` section, as (key path under it, message).

    The policy loader's own check (one set of rules and messages for both); pure, so the
    loader reports these with the rest of a file's problems, each at its own line.
    Imported on first use: the policy layer loads pydantic.
    """
    from ..policy._observability import observability_problems

    return observability_problems(config)
