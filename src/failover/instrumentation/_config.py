"""Listeners from a policy's ``observability:`` section (as plain data)."""

from __future__ import annotations

import difflib
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

    Pure: builds nothing and changes nothing, so the policy loader reports these with the
    rest of a file's problems, each at its own line.
    """
    if not isinstance(config, Mapping):
        expected = "a mapping (logging, stats, prometheus, otel, trace)"
        return [((), f"expected {expected}, got {config!r}")]
    problems = _unknown(config, _KEYS, ())
    problems += _logging_problems(config.get("logging", True))
    problems += _stats_problems(config.get("stats", False))
    prometheus = config.get("prometheus", False)
    if isinstance(prometheus, Mapping):
        problems += _unknown(prometheus, ("namespace",), ("prometheus",))
        namespace = prometheus.get("namespace", "failover")
        if not isinstance(namespace, str) or not namespace:
            problems.append((("prometheus", "namespace"), f"expected a string, got {namespace!r}"))
    else:
        problems += _flag(prometheus, ("prometheus",), "true, false or {namespace: ...}")
    problems += _flag(config.get("otel", False), ("otel",), "true or false")
    trace = config.get("trace")
    if trace is not None and trace is not False and (not isinstance(trace, str) or not trace):
        problems.append((("trace",), f"expected a file path, got {trace!r}"))
    return problems


def _logging_problems(value: object) -> list[Problem]:
    if not isinstance(value, Mapping):
        return _flag(value, ("logging",), "true, false or {level: ..., prompts: ...}")
    problems = _unknown(value, ("level", "prompts"), ("logging",))
    if value.get("prompts", False) is not False:
        message = "only false is supported; failover's events never carry the prompt text"
        problems.append((("logging", "prompts"), message))
    level = value.get("level")
    if level is not None and (not isinstance(level, str) or level.lower() not in _LEVELS):
        message = f"expected one of {', '.join(_LEVELS)}, got {level!r}"
        problems.append((("logging", "level"), message))
    return problems


def _stats_problems(value: object) -> list[Problem]:
    if not isinstance(value, Mapping):
        return _flag(value, ("stats",), "true, false or {window: ..., max_samples: ...}")
    problems = _unknown(value, ("window", "max_samples"), ("stats",))
    if "window" in value:
        try:
            parse_duration(value["window"])
        except ValueError as exc:
            problems.append((("stats", "window"), str(exc)))
    samples = value.get("max_samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        message = f"expected a positive integer, got {samples!r}"
        problems.append((("stats", "max_samples"), message))
    return problems


def _flag(value: object, path: tuple[str, ...], expected: str) -> list[Problem]:
    if value is None or isinstance(value, bool):
        return []
    return [(path, f"expected {expected}, got {value!r}")]


def _unknown(
    section: Mapping[str, Any], known: tuple[str, ...], path: tuple[str, ...]
) -> list[Problem]:
    problems: list[Problem] = []
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                (
                    (*path, str(key)),
                    f"unknown key {key!r}{hint}; expected one of {', '.join(known)}",
                )
            )
    return problems
