"""Candidates for ``failover simulate``: the settings to compare, from ``--set`` options.

``--set breaker.failure_threshold=3,5 --set breaker.reset_timeout=10s,30s`` makes four
candidates, the cartesian product. Each value is validated by the policy's own override
models, so it reads (``10s``, ``0.5``, ``null``) and fails exactly as it would in a
policy file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from ..policy._durations import parse_duration
from ..policy._fields import did_you_mean
from ..policy._model import (
    BackoffPolicy,
    BreakerOverride,
    BreakerPolicy,
    Policy,
    RetryOverride,
    RetryPolicy,
    TimeoutOverride,
    TimeoutPolicy,
)
from ..policy._sections import Override, RetryBudgetPolicy, merge

__all__ = ["MAX_CANDIDATES", "Candidate", "EndpointSettings", "candidates"]

#: The most candidates one run compares; more is almost always a typo in ``--set``.
MAX_CANDIDATES: Final = 50

_BLOCKS: Final[Mapping[str, type[BaseModel]]] = {
    "breaker": BreakerPolicy,
    "retry": RetryPolicy,
    "retry.backoff": BackoffPolicy,
    "retry.budget": RetryBudgetPolicy,
    "timeout": TimeoutPolicy,
}
_OVERRIDES: Final[Mapping[str, type[Override]]] = {
    "breaker": BreakerOverride,
    "retry": RetryOverride,
    "timeout": TimeoutOverride,
}


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """The settings one endpoint runs with in one candidate."""

    timeout: TimeoutPolicy
    retry: RetryPolicy
    breaker: BreakerPolicy


@dataclass(frozen=True, slots=True)
class Candidate:
    """One set of settings to try.

    Attributes:
        label: how the report names it (the ``--set`` values that make it, or ``policy``).
        settings: the ``--set`` keys and the values as written.
        endpoints: the route's endpoints, in order, with their settings.
        deadline: the route's deadline in seconds.
    """

    label: str
    settings: Mapping[str, str]
    endpoints: Mapping[str, EndpointSettings]
    deadline: float


def candidates(policy: Policy, route: str, sets: Sequence[str]) -> list[Candidate]:
    """The cartesian product of ``--set KEY=V1,V2,...`` over a route's settings.

    ``KEY`` is ``breaker.FIELD``, ``retry.FIELD``, ``retry.backoff.FIELD``,
    ``retry.budget.FIELD``, ``timeout.FIELD`` or ``deadline``, optionally prefixed by an
    endpoint name to change that endpoint only (otherwise every endpoint of the route, like
    a route override).
    Values are read as the policy reads them (``10s``, ``0.5``, ``null`` or ``off``).

    Raises:
        ValueError: a malformed ``--set``, an unknown key, an invalid value, or more than
            :data:`MAX_CANDIDATES` combinations.
    """
    names = policy.route(route).endpoints
    base = {name: EndpointSettings(*policy.effective(route, name)) for name in names}
    deadline = policy.route(route).deadline
    parsed = [_parse_set(text, names) for text in sets]
    keys = [key for key, _, _ in parsed]
    if len(set(keys)) != len(keys):
        raise ValueError(f"--set {next(k for k in keys if keys.count(k) > 1)} is given twice")
    total = math.prod(len(values) for _, _, values in parsed)
    if total > MAX_CANDIDATES:
        sizes = " x ".join(str(len(values)) for _, _, values in parsed)
        raise ValueError(f"--set makes {sizes} = {total} candidates, more than"
                         f" {MAX_CANDIDATES}: give fewer values")  # fmt: skip
    labels = _short_keys(keys)
    result = []
    for combo in itertools.product(*(values for _, _, values in parsed)):
        endpoints, limit = dict(base), deadline
        for (_, target, _), (_, change) in zip(parsed, combo, strict=True):
            if isinstance(change, float):
                limit = change
                continue
            for name in [target] if target else names:
                endpoints[name] = _apply(endpoints[name], change)
        settings = {key: shown for key, (shown, _) in zip(keys, combo, strict=True)}
        label = " ".join(f"{labels[k]}={v}" for k, v in settings.items()) or "policy"
        result.append(Candidate(label, settings, endpoints, limit))
    return result


def _parse_set(
    text: str, endpoints: Sequence[str]
) -> tuple[str, str | None, list[tuple[str, float | tuple[str, Override]]]]:
    key, eq, values = text.partition("=")
    if not eq or not values:
        raise ValueError(f"--set {text!r}: expected KEY=VALUE[,VALUE...]")
    parts = key.split(".")
    target = parts.pop(0) if parts[0] in endpoints and len(parts) > 1 else None
    if parts == ["deadline"] and target is None:
        try:
            return key, None, [(v, parse_duration(v)) for v in values.split(",")]
        except ValueError as exc:
            raise ValueError(f"--set {key}: {exc}") from None
    section = parts[0]
    if section not in _OVERRIDES or len(parts) < 2:
        hint = did_you_mean(section, [*_OVERRIDES, "deadline"])
        raise ValueError(f"--set {key}: unknown setting{hint}; use breaker.*, retry.*,"
                         " timeout.* or deadline, optionally after an endpoint name")  # fmt: skip
    block = section
    for depth, name in enumerate(parts[1:], start=1):
        fields = _BLOCKS[block].model_fields
        if name not in fields:
            hint = did_you_mean(name, fields) or f" (fields: {', '.join(fields)})"
            raise ValueError(f"--set {key}: {block} has no {name!r}{hint}")
        nested = f"{block}.{name}"
        if nested in _BLOCKS and depth == len(parts) - 1:
            raise ValueError(f"--set {key}: name one field of {nested}")
        block = nested if nested in _BLOCKS else block
    result: list[tuple[str, float | tuple[str, Override]]] = []
    for value in values.split(","):
        data: Any = _scalar(value)
        for name in reversed(parts[1:]):
            data = {name: data}
        try:
            change = _OVERRIDES[section].model_validate(data)
        except ValidationError as exc:
            message = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
            raise ValueError(f"--set {key}={value}: {message}") from None
        result.append((value, (section, change)))
    return key, target, result


def _scalar(text: str) -> object:
    """A ``--set`` value as YAML would give it to the policy: number, null or string."""
    if text in ("null", "off", "~"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _apply(settings: EndpointSettings, change: tuple[str, Override]) -> EndpointSettings:
    section, override = change
    current = getattr(settings, section)
    return EndpointSettings(**{
        "timeout": settings.timeout, "retry": settings.retry, "breaker": settings.breaker,
        section: merge(current, override),
    })  # fmt: skip


def _short_keys(keys: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that tells it apart from the others."""
    short = {}
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if not any(other != key and other.endswith(suffix) for other in keys):
                break
        short[key] = suffix
    return short
