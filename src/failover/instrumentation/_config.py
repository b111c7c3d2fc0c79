"""Listeners from a policy's ``observability:`` section (as plain data)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

from .._durations import parse_duration
from .._events import Listener
from .._logging import LoggingListener
from ._jsonl import JsonlTraceListener
from ._otel import OpenTelemetryListener
from ._prometheus import PrometheusListener
from ._stats import StatsListener

__all__ = ["listeners_from_config"]

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
    _check_keys(config, _KEYS, "observability")
    listeners: list[Listener] = []
    logging_listener = _logging(config.get("logging", True))
    if logging_listener is not None:
        listeners.append(logging_listener)
    stats = _stats(config.get("stats", False))
    if stats is not None:
        listeners.append(stats)
    prometheus = config.get("prometheus", False)
    if isinstance(prometheus, Mapping):
        _check_keys(prometheus, ("namespace",), "observability.prometheus")
        namespace = prometheus.get("namespace", "failover")
        if not isinstance(namespace, str):
            raise ValueError(
                f"observability.prometheus.namespace: expected a string, got {namespace!r}"
            )
        listeners.append(PrometheusListener(namespace=namespace))
    elif _flag(prometheus, "observability.prometheus", "true, false or {namespace: ...}"):
        listeners.append(PrometheusListener())
    if _flag(config.get("otel", False), "observability.otel", "true or false"):
        listeners.append(OpenTelemetryListener())
    trace = config.get("trace")
    if trace is not None and trace is not False:
        if not isinstance(trace, str) or not trace:
            raise ValueError(f"observability.trace: expected a file path, got {trace!r}")
        listeners.append(JsonlTraceListener(trace))
    return listeners


def _logging(value: object) -> LoggingListener | None:
    if not isinstance(value, Mapping):
        if _flag(value, "observability.logging", "true, false or {level: ..., prompts: ...}"):
            return LoggingListener()
        return None
    _check_keys(value, ("level", "prompts"), "observability.logging")
    if value.get("prompts", False) is not False:
        raise ValueError(
            "observability.logging.prompts: only false is supported;"
            " failover's events never carry the prompt text"
        )
    level = value.get("level")
    if level is not None:
        if not isinstance(level, str) or level.lower() not in _LEVELS:
            raise ValueError(
                f"observability.logging.level: expected one of {', '.join(_LEVELS)}, got {level!r}"
            )
        logging.getLogger("failover").setLevel(_LEVELS[level.lower()])
    return LoggingListener()


def _stats(value: object) -> StatsListener | None:
    if not isinstance(value, Mapping):
        if _flag(value, "observability.stats", "true, false or {window: ..., max_samples: ...}"):
            return StatsListener()
        return None
    _check_keys(value, ("window", "max_samples"), "observability.stats")
    kwargs: dict[str, Any] = {}
    if "window" in value:
        try:
            kwargs["window"] = parse_duration(value["window"])
        except ValueError as exc:
            raise ValueError(f"observability.stats.window: {exc}") from None
    if "max_samples" in value:
        samples = value["max_samples"]
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(
                f"observability.stats.max_samples: expected a positive integer, got {samples!r}"
            )
        kwargs["max_samples"] = samples
    return StatsListener(**kwargs)


def _flag(value: object, where: str, expected: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected {expected}, got {value!r}")
    return value


def _check_keys(section: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{where}: unknown key {key!r}{hint}; expected one of {', '.join(known)}"
            )
