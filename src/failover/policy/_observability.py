"""The ``observability:`` section: which listeners a Router gets when the code names none.

The section is checked with the rest of the file (:func:`observability_problems`, every
problem at its own line) and resolved once, at load time, into a frozen
:class:`ObservabilityPolicy`. That object has typed attributes (``logging``, ``stats``,
``prometheus``, ``otel``, ``trace``) and is also a read-only mapping of the section as
written, which is the form :func:`failover.instrumentation.listeners_from_config` takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

from ._durations import DAY, parse_duration
from ._fields import DURATION_SCHEMA, describe, did_you_mean

__all__ = [
    "OBSERVABILITY_SCHEMA",
    "LoggingSettings",
    "ObservabilityPolicy",
    "PrometheusSettings",
    "StatsSettings",
    "observability_problems",
]

Level = Literal["debug", "info", "warning"]
_KEYS = ("logging", "otel", "prometheus", "stats", "trace")
_LEVELS: tuple[Level, ...] = ("debug", "info", "warning")
Problem = tuple[tuple[str, ...], str]

_SWITCH = {"type": "boolean"}
OBSERVABILITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "logging": {
            "description": "The logging listener (logger failover). Default true.",
            "anyOf": [
                _SWITCH,
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "level": {
                            "enum": ["debug", "info", "warning"],
                            "description": "Sets the failover logger's level.",
                        },
                        "prompts": {
                            "const": False,
                            "description": "Prompts are never logged; only false.",
                        },
                    },
                },
            ],
        },
        "stats": {
            "description": "A StatsListener (p50/p95/p99 and errors in status). Default false.",
            "anyOf": [
                _SWITCH,
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "window": {
                            **DURATION_SCHEMA,
                            "description": "How far back the figures reach (a duration).",
                        },
                        "max_samples": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "Latencies kept per endpoint.",
                        },
                    },
                },
            ],
        },
        "prometheus": {
            "description": "A PrometheusListener (extra prometheus). Default false.",
            "anyOf": [
                _SWITCH,
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "namespace": {"type": "string", "description": "Metric name prefix."}
                    },
                },
            ],
        },
        "otel": {"description": "An OpenTelemetryListener (extra otel). Default false.", **_SWITCH},
        "trace": {
            "description": "A JSONL trace file for failover simulate ({pid} is replaced); "
            "false: off.",
            "type": ["string", "boolean"],
        },
    },
}


@dataclasses.dataclass(frozen=True, slots=True)
class LoggingSettings:
    """The logging listener: on unless ``logging: false``.

    Attributes:
        enabled: whether the Router gets a :class:`~failover.instrumentation.LoggingListener`.
        level: the level set on the ``failover`` logger, or ``None``: left as it is.
    """

    enabled: bool = True
    level: Level | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StatsSettings:
    """A :class:`~failover.instrumentation.StatsListener`; ``None`` fields keep its defaults.

    Attributes:
        window: seconds the figures reach back, or ``None``.
        max_samples: latencies kept per endpoint, or ``None``.
    """

    window: float | None = None
    max_samples: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """A :class:`~failover.instrumentation.PrometheusListener`.

    Attributes:
        namespace: the metric name prefix.
    """

    namespace: str = "failover"


@dataclasses.dataclass(frozen=True, slots=True)
class ObservabilityPolicy(Mapping[str, Any]):
    """The resolved ``observability:`` section.

    Equality and hashing use the resolved settings (``window: 2m`` equals ``window: 120``);
    as a mapping it reads the section as written (empty, so false, when the file has none).

    Attributes:
        logging: the logging listener's settings.
        stats: the stats listener's settings, or ``None``: not asked for.
        prometheus: the Prometheus listener's settings, or ``None``: off.
        otel: whether an OpenTelemetry listener is added.
        trace: the JSONL trace file (``{pid}`` is replaced), or ``None``: off.
    """

    logging: LoggingSettings = LoggingSettings()
    stats: StatsSettings | None = None
    prometheus: PrometheusSettings | None = None
    otel: bool = False
    trace: str | None = None
    written: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ObservabilityPolicy:
        """Resolve a section as written (already checked by :func:`observability_problems`).

        Raises:
            ValueError: the section has a problem (the first one, with its key path).
        """
        problems = observability_problems(config)
        if problems:
            path, message = problems[0]
            raise ValueError(f"{'.'.join(('observability', *path))}: {message}")
        log = config.get("logging", True)
        logging = LoggingSettings(enabled=log is not False)
        if isinstance(log, Mapping) and log.get("level") is not None:
            logging = LoggingSettings(level=_level(log["level"]))
        stats = config.get("stats", False)
        prometheus = config.get("prometheus", False)
        trace = config.get("trace")
        return cls(
            logging=logging,
            stats=_stats(stats) if stats is True or isinstance(stats, Mapping) else None,
            prometheus=(
                PrometheusSettings(**dict(prometheus))
                if isinstance(prometheus, Mapping)
                else PrometheusSettings()
                if prometheus is True
                else None
            ),
            otel=config.get("otel", False) is True,
            trace=trace if isinstance(trace, str) else None,
            written=MappingProxyType(dict(config)),
        )

    def __getitem__(self, key: str) -> Any:
        return self.written[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.written)

    def __len__(self) -> int:
        return len(self.written)


def _level(value: str) -> Level:
    return next(level for level in _LEVELS if level == value.lower())


def _stats(value: object) -> StatsSettings:
    if not isinstance(value, Mapping):
        return StatsSettings()
    window = value.get("window")
    return StatsSettings(
        window=None if window is None else parse_duration(window, DAY),
        max_samples=value.get("max_samples"),
    )


def observability_problems(config: object) -> list[Problem]:
    """Every problem of an ``observability:`` section, as (key path under it, message)."""
    if not isinstance(config, Mapping):
        expected = "a mapping (logging, stats, prometheus, otel, trace)"
        return [((), f"expected {expected}, got {describe(config)}")]
    problems = _unknown(config, _KEYS, ())
    problems += _logging_problems(config.get("logging", True))
    problems += _stats_problems(config.get("stats", False))
    prometheus = config.get("prometheus", False)
    if isinstance(prometheus, Mapping):
        problems += _unknown(prometheus, ("namespace",), ("prometheus",))
        namespace = prometheus.get("namespace", "failover")
        if not isinstance(namespace, str) or not namespace:
            message = f"expected a string, got {describe(namespace)}"
            problems.append((("prometheus", "namespace"), message))
    else:
        problems += _flag(prometheus, ("prometheus",), "true, false or {namespace: ...}")
    problems += _flag(config.get("otel", False), ("otel",), "true or false")
    trace = config.get("trace", False)
    if trace is not False and (not isinstance(trace, str) or not trace):
        problems.append((("trace",), f"expected a file path, got {describe(trace)}"))
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
        message = f"expected one of {', '.join(_LEVELS)}, got {describe(level)}"
        problems.append((("logging", "level"), message))
    return problems


def _stats_problems(value: object) -> list[Problem]:
    if not isinstance(value, Mapping):
        return _flag(value, ("stats",), "true, false or {window: ..., max_samples: ...}")
    problems = _unknown(value, ("window", "max_samples"), ("stats",))
    if "window" in value:
        try:
            parse_duration(value["window"], DAY)
        except ValueError as exc:
            problems.append((("stats", "window"), str(exc)))
    samples = value.get("max_samples", 1)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        message = f"expected a positive integer, got {describe(samples)}"
        problems.append((("stats", "max_samples"), message))
    return problems


def _flag(value: object, path: tuple[str, ...], expected: str) -> list[Problem]:
    if isinstance(value, bool):
        return []
    return [(path, f"expected {expected}, got {describe(value)}")]


def _unknown(
    section: Mapping[Any, Any], known: tuple[str, ...], path: tuple[str, ...]
) -> list[Problem]:
    problems: list[Problem] = []
    for key in section:
        if key not in known:
            hint = did_you_mean(key, known)
            message = f"unknown key {describe(key)}{hint}; expected one of {', '.join(known)}"
            problems.append(((*path, str(key)), message))
    return problems
