"""Checks that walk the whole document as written: ``null`` values and non-finite numbers.

Both run on the raw data before the models see it, so each problem is reported once, at
its own key path, and never as a less helpful complaint from the model further down.

``null`` means something for only three keys: ``failure_rate`` and ``slow_call`` in a
``breaker`` block, and ``first_token`` in a ``timeout`` block ("off", overriding an
inherited value). Everywhere else it is an error: left silently as "unset",
``api_key: null`` would fall back to the SDK's environment variable, and a setting meant
to be written would quietly keep its default. Values inside ``params`` are the provider's
business and may be ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from ._yaml import KeyPath

__all__ = ["NULL_SWITCHES", "non_finite_problems", "null_problems"]

#: (block, key) pairs where ``null`` means "off".
NULL_SWITCHES = frozenset(
    {("breaker", "failure_rate"), ("breaker", "slow_call"), ("timeout", "first_token")}
)
_OVERRIDE_BLOCKS = frozenset({"timeout", "retry", "breaker", "backoff", "budget"})
Located = tuple[KeyPath, str]


def _leaves(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """Every scalar with its key path (mappings and lists are walked, not yielded)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _in_params(path: KeyPath) -> bool:
    return len(path) > 3 and path[0] == "endpoints" and path[2] == "params"


def null_problems(data: Any) -> list[Located]:
    """A problem for every ``null`` that does not mean "off" (see the module docstring)."""
    problems: list[Located] = []
    for path, value in _leaves(data, ()):
        if value is not None or _in_params(path) or tuple(path[-2:]) in NULL_SWITCHES:
            continue
        problems.append((path, _null_message(path)))
    return problems


def _null_message(path: KeyPath) -> str:
    if path and path[-1] == "api_key":
        return (
            "null is not allowed here (leave api_key out to use the SDK's own environment variable)"
        )
    if any(part in _OVERRIDE_BLOCKS for part in path[:-1]) or (
        path and path[-1] in _OVERRIDE_BLOCKS
    ):
        return "null is not allowed here (leave the key out to inherit)"
    return "null is not allowed here (leave the key out for its default)"


def non_finite_problems(data: Any) -> list[Located]:
    """A problem for every ``.nan``/``.inf`` anywhere, ``params`` included.

    A non-finite number is never a meaningful setting, and sent as a request parameter it
    fails every call before it reaches the network (JSON has no NaN).
    """
    return [
        (path, f"expected a finite number, got {value!r}")
        for path, value in _leaves(data, ())
        if isinstance(value, float) and not math.isfinite(value)
    ]
